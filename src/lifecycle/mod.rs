//! An attachment's life after it is made: `del` takes it off again, `ls` lists what
//! is there; both find attachments from the kernel alone, by their mark
//! (`crate::plan::alias`).

pub mod del;
pub mod ls;
