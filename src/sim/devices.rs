//! Optional loop-device backing of volumes (`hcloud-sim --block-devices DIR`,
//! root only), so end-to-end tests can format and mount real block devices.
//!
//! Every volume is a sparse file `DIR/volumes/<id>.img`. A volume created with
//! a `format` gets that filesystem when its create action succeeds. While a
//! volume is attached to a selected server it is a loop device, and its
//! `linux_device`, `DIR/by-id/scsi-0HC_Volume_<id>`, is a symlink to it (there
//! is no udev here to make `/dev/disk/by-id`). Resize grows the file and
//! refreshes the loop device; detach releases it; delete removes the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::world::{Effect, World};

/// Inodes per filesystem: keeps inode tables small, so nothing zeroes
/// gigabytes of sparse file in the background after mount.
const INODES: &str = "16384";

/// The loop devices and backing files of a simulator.
#[derive(Debug)]
pub struct BlockDevices {
    dir: PathBuf,
    /// Servers whose volumes become loop devices; `None`: every server.
    servers: Option<BTreeSet<String>>,
    loops: BTreeMap<i64, String>,
    keep_files: bool,
}

impl BlockDevices {
    /// Prepares `DIR/volumes` and `DIR/by-id`. With `keep_files`, backing
    /// files outlive the simulator (for `--state`).
    pub fn open(dir: &Path, servers: Option<BTreeSet<String>>, keep_files: bool) -> Result<Self> {
        for sub in ["volumes", "by-id"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
        }
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        Ok(BlockDevices {
            dir,
            servers,
            loops: BTreeMap::new(),
            keep_files,
        })
    }

    /// The folder `linux_device` paths live in.
    pub fn by_id_dir(&self) -> String {
        self.dir.join("by-id").display().to_string()
    }

    fn file(&self, id: i64) -> PathBuf {
        self.dir.join("volumes").join(format!("{id}.img"))
    }

    fn link(&self, id: i64) -> PathBuf {
        self.dir.join("by-id").join(format!("scsi-0HC_Volume_{id}"))
    }

    fn selected(&self, world: &World, server: i64) -> bool {
        let name = world
            .servers
            .get(&server)
            .map(|s| s.name.as_str())
            .unwrap_or_default();
        self.servers.as_ref().is_none_or(|set| set.contains(name))
    }

    /// Brings files and loop devices in line with the world (at start-up).
    pub fn sync(&mut self, world: &World) -> Result<()> {
        for v in world.volumes.values() {
            if !self.file(v.id).exists() {
                self.create(v.id, v.size, v.format.as_deref())?;
            }
            if let Some(server) = v.server {
                if self.selected(world, server) {
                    self.attach(v.id)?;
                }
            }
        }
        Ok(())
    }

    /// Mirrors one applied effect.
    pub fn apply(&mut self, world: &World, effect: Effect) -> Result<()> {
        match effect {
            Effect::Create { volume } => match world.volumes.get(&volume) {
                Some(v) => self.create(volume, v.size, v.format.as_deref()),
                None => Ok(()),
            },
            Effect::Attach { volume, server } if self.selected(world, server) => {
                self.attach(volume)
            }
            Effect::Attach { .. } | Effect::Protect { .. } => Ok(()),
            Effect::Detach { volume, .. } => self.detach(volume),
            Effect::Resize { volume, size } => {
                let f = fs::OpenOptions::new().write(true).open(self.file(volume))?;
                f.set_len(u64::from(size) << 30)?;
                match self.loops.get(&volume) {
                    Some(dev) => run("losetup", &["-c", dev]),
                    None => Ok(()),
                }
            }
        }
    }

    /// Removes a deleted volume's file.
    pub fn deleted(&mut self, id: i64) -> Result<()> {
        self.detach(id)?;
        match fs::remove_file(self.file(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn create(&mut self, id: i64, size_gb: u32, format: Option<&str>) -> Result<()> {
        let path = self.file(id);
        let f =
            fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        f.set_len(u64::from(size_gb) << 30)?;
        drop(f);
        let p = path.display().to_string();
        match format {
            Some("ext4") => run(
                "mkfs.ext4",
                &[
                    "-F",
                    "-q",
                    "-N",
                    INODES,
                    "-E",
                    "lazy_itable_init=0,lazy_journal_init=1",
                    &p,
                ],
            ),
            Some("xfs") => run("mkfs.xfs", &["-f", "-q", &p]),
            Some(other) => bail!("unknown format {other}"),
            None => Ok(()),
        }
    }

    fn attach(&mut self, id: i64) -> Result<()> {
        if self.loops.contains_key(&id) {
            return Ok(());
        }
        let file = self.file(id).display().to_string();
        let out = Command::new("losetup")
            .args(["-f", "--show", &file])
            .output()
            .context("cannot run losetup")?;
        if !out.status.success() {
            bail!(
                "losetup {file}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let link = self.link(id);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&dev, &link)
            .with_context(|| format!("cannot link {}", link.display()))?;
        self.loops.insert(id, dev);
        Ok(())
    }

    fn detach(&mut self, id: i64) -> Result<()> {
        let _ = fs::remove_file(self.link(id));
        match self.loops.remove(&id) {
            Some(dev) => run("losetup", &["-d", &dev]),
            None => Ok(()),
        }
    }

    /// Releases every loop device and link; removes the files unless kept.
    pub fn release_all(&mut self) {
        let ids: Vec<i64> = self.loops.keys().copied().collect();
        for id in ids {
            if let Err(e) = self.detach(id) {
                eprintln!("hcloud-sim: {e:#}");
            }
        }
        if !self.keep_files {
            let _ = fs::remove_dir_all(self.dir.join("volumes"));
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
