//! What a container only inherited from its image. Docker copies an image's labels
//! and environment (`LABEL`, `ENV`) into every container made from it, so an image
//! pulled from a registry could declare an attachment (`--direct-phys eth0 ...`)
//! that nobody who runs it asked for. Unless the watcher trusts images
//! (`--trust-images`), a declaration whose label or variable has the image's name
//! and value is not applied; one set or changed on the container (`docker run
//! -l`/`-e`, compose labels) is. An image's configuration never changes under its
//! id: each is inspected once, and kept.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::daemon;
use super::declare::{labels_and_env, Container, Declaration, Entry};

/// Images kept at most; then all are forgotten at once (they are asked for again).
const KEPT: usize = 256;

/// What an image declares: its labels and environment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Image {
    labels: BTreeMap<String, String>,
    env: Vec<(String, String)>,
}

impl Image {
    pub fn from_inspect(v: &Value) -> Result<Image> {
        let config = v.get("Config").context("Docker's image inspect has no Config")?;
        let (labels, env) = labels_and_env(config);
        Ok(Image { labels, env })
    }

    /// Whether the image has `entry`, name and value: the container only inherited it.
    pub fn declares(&self, entry: &Entry) -> bool {
        match entry {
            Entry::Label(k, v) => self.labels.get(k) == Some(v),
            Entry::Env(k, v) => self.env.iter().any(|(ik, iv)| ik == k && iv == v),
        }
    }
}

/// `all` as (those to apply, those the container only inherited). An image that
/// cannot be known (gone, an error) may have declared any: none is applied.
pub fn split(all: Vec<Declaration>, image: Result<&Image, &String>) -> (Vec<Declaration>, Vec<Declaration>) {
    match image {
        Ok(image) => all.into_iter().partition(|d| !image.declares(&d.entry)),
        Err(_) => (Vec::new(), all),
    }
}

/// The images inspected, by id. Concurrent starts of one image (a compose scale-up)
/// wait for the one inspect; one that failed is asked again next time.
#[derive(Default)]
pub struct Images(RefCell<HashMap<String, Rc<OnceCell<Rc<Image>>>>>);

impl Images {
    /// The image `c` was made from, or why it cannot be known.
    pub async fn of(&self, socket: &Path, c: &Container) -> Result<Rc<Image>, String> {
        if c.image.is_empty() {
            return Err("Docker names no image for it".to_string());
        }
        let inspect = || async {
            match daemon::image(socket, &c.image)
                .await
                .and_then(|v| v.as_ref().map(Image::from_inspect).transpose())
            {
                Ok(Some(image)) => Ok(Rc::new(image)),
                Ok(None) => Err(format!("no such image {}", c.image)),
                Err(e) => Err(format!("cannot inspect image {}: {e:#}", c.image)),
            }
        };
        self.cell(&c.image).get_or_try_init(inspect).await.cloned()
    }

    /// The place of image `id`, made if it is not there.
    fn cell(&self, id: &str) -> Rc<OnceCell<Rc<Image>>> {
        let mut kept = self.0.borrow_mut();
        if kept.len() >= KEPT && !kept.contains_key(id) {
            kept.clear();
        }
        kept.entry(id.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image() -> Image {
        let v = json!({
            "Id": "sha256:baa5",
            "Config": {
                "Labels": {"pipework.1": "eth0 --direct-phys dhcp", "maintainer": "x"},
                "Env": ["PATH=/bin", "pipework_cmd=eth0 @CONTAINER_NAME@ dhcp"]
            }
        });
        Image::from_inspect(&v).unwrap()
    }

    fn label(k: &str, v: &str) -> Entry {
        Entry::Label(k.into(), v.into())
    }

    fn env(k: &str, v: &str) -> Entry {
        Entry::Env(k.into(), v.into())
    }

    #[test]
    fn an_entry_is_the_images_when_its_name_and_value_are() {
        let i = image();
        assert!(i.declares(&label("pipework.1", "eth0 --direct-phys dhcp")));
        assert!(i.declares(&env("pipework_cmd", "eth0 @CONTAINER_NAME@ dhcp")));
        // Set on the container: another value, or a name the image has not.
        assert!(!i.declares(&label("pipework.1", "br1 10.0.0.2/24")));
        assert!(!i.declares(&label("pipework.1", "eth0 --direct-phys dhcp ")), "to the byte");
        assert!(!i.declares(&label("pipework.2", "eth0 --direct-phys dhcp")));
        assert!(!i.declares(&env("pipework_cmd", "br1 @CONTAINER_NAME@ dhcp")));
        assert!(!i.declares(&env("pipework_cmd_2", "eth0 @CONTAINER_NAME@ dhcp")));
        // A label and a variable are not each other, whatever their names.
        assert!(!i.declares(&env("pipework.1", "eth0 --direct-phys dhcp")));
        assert!(!i.declares(&label("pipework_cmd", "eth0 @CONTAINER_NAME@ dhcp")));
    }

    #[test]
    fn only_what_the_container_set_or_changed_is_applied() {
        let c = Container {
            id: "4c5e3d6a1f0b".repeat(5) + "2c3d",
            name: "web_1".into(),
            labels: [("pipework.1", "eth0 --direct-phys dhcp"), ("pipework.2", "br1 10.0.0.2/24")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            env: vec![("pipework_cmd".into(), "eth0 @CONTAINER_NAME@ dhcp".into())],
            ..Container::default()
        };
        let all = || match crate::watch::declare::declarations(&c, None) {
            crate::watch::declare::Declared::Serve(d) => d,
            other => panic!("{other:?}"),
        };
        let sources = |d: &[Declaration]| d.iter().map(|d| d.source.clone()).collect::<Vec<_>>();
        let (own, inherited) = split(all(), Ok(&image()));
        assert_eq!(sources(&own), ["label pipework.2"]);
        assert_eq!(sources(&inherited), ["label pipework.1", "env pipework_cmd"]);
        let (own, inherited) = split(all(), Err(&"no such image sha256:baa5".to_string()));
        assert!(own.is_empty(), "an image not known may have declared any");
        assert_eq!(inherited.len(), 3);
        let (own, _) = split(all(), Ok(&Image::default()));
        assert_eq!(own.len(), 3, "an image that declares nothing");
    }

    #[test]
    fn an_image_without_labels_or_environment_declares_nothing() {
        let i = Image::from_inspect(&json!({"Config": {"Labels": null, "Env": null}})).unwrap();
        assert_eq!(i, Image::default());
        assert!(!i.declares(&label("pipework.1", "")));
        assert!(!i.declares(&env("pipework_cmd", "")), "an empty value is a value");
        assert!(Image::from_inspect(&json!({"Id": "x"})).is_err(), "no Config: not known");
    }

    #[test]
    fn an_image_is_kept_once_by_id_and_the_kept_are_bounded() {
        let images = Images::default();
        let first = images.cell("sha256:0");
        assert!(Rc::ptr_eq(&first, &images.cell("sha256:0")), "one per id");
        for n in 1..KEPT {
            images.cell(&format!("sha256:{n}"));
        }
        assert_eq!(images.0.borrow().len(), KEPT);
        assert!(Rc::ptr_eq(&first, &images.cell("sha256:0")), "one kept is not forgotten");
        images.cell("sha256:new");
        assert_eq!(images.0.borrow().len(), 1, "full: forgotten all at once");
    }
}
