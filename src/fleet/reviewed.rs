//! The reviewed diff as a file: its bytes, the confirmation code derived from
//! them, and the parsed [`Diff`]. The code is what an operator confirms, so a
//! diff edited after its review has another code and no old confirmation
//! applies to it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::diff::Diff;
use super::paths::Playbook;

/// How many hex digits of the sha256 make the confirmation code.
const CODE_LEN: usize = 12;

/// The confirmation code of a diff file: the first 12 hex digits of the
/// sha256 of its bytes.
pub fn confirmation_code(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..CODE_LEN].to_string()
}

/// A diff file as read: where it is, its code, its content.
#[derive(Debug, Clone)]
pub struct ReviewedDiff {
    pub path: PathBuf,
    pub code: String,
    pub diff: Diff,
}

/// Reads and parses a diff file. The error names the file and the line.
pub fn load(path: &Path) -> Result<ReviewedDiff, String> {
    let bytes = crate::fsutil::read_bounded(path, crate::fsutil::MAX_JSON_BYTES).map_err(|e| {
        format!(
            "{}: cannot read the PH3-01 diff: {e}. Run `ansible-playbook {}` to write it.",
            path.display(),
            Playbook::Ph3_01.run_as()
        )
    })?;
    let diff: Diff = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{}:{}: not a valid PH3-01 diff: {e}. Do not edit the diff by hand: refresh it with \
             `ansible-playbook -i localhost, {}` (the inventory does not load while this file is refused).",
            path.display(),
            e.line(),
            Playbook::Ph3_01.run_as()
        )
    })?;
    Ok(ReviewedDiff {
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        code: confirmation_code(&bytes),
        diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_start_of_the_sha256() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(confirmation_code(b"abc"), "ba7816bf8f01");
        assert_ne!(confirmation_code(b"abc\n"), confirmation_code(b"abc"));
    }
}
