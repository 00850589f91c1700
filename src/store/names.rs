//! Names of files and objects in the store: a plain file name only.

use std::io;

/// `name` as a file of `dir`: a plain file name only. Names come from the
/// manifest, which a person or a damaged disk may have changed: a name
/// like `/etc/passwd` or `../x` would reach out of the store.
pub fn file_in(dir: &std::path::Path, name: &str) -> io::Result<std::path::PathBuf> {
    check_name(name)?;
    Ok(dir.join(name))
}

/// Refuse a name that is not one plain file name.
pub fn check_name(name: &str) -> io::Result<()> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name of the store"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for bad in ["/etc/passwd", "../x", "a/b", "..", "", "a\\b", "nul\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["manifest.jsonl", "model_v1_2026.json.meta.json", ".probe-conditions-1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }
}
