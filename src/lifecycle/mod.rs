//! An attachment's life after it is made: `del` takes it off again, `ls` lists what
//! is there, `check` compares it with how it was made, `gc` removes what guests that
//! are gone left behind. All find attachments from the kernel, by their mark
//! (`crate::plan::alias`); the records (`crate::record`) only add what the kernel
//! cannot say.

pub mod check;
pub mod del;
pub mod gc;
pub mod ls;
mod nic_home;
pub mod recover;
mod restore;
pub mod vlan_devices;
