//! Files a device keeps private: folders only its user can enter, files only its user can
//! read, written whole or not at all. Shared by `quorate` and `quorate-node`.

use std::{io::Write, path::Path};

/// Creates `folder` (and parents) and makes it enterable by its user only. The error says
/// which folder and why.
pub fn private_folder(folder: &Path) -> Result<(), String> {
    std::fs::create_dir_all(folder)
        .map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
            .map_err(|error| format!("cannot protect {}: {error}", folder.display()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path`, readable by its user only, replacing any old file atomically
/// (a temporary file, synced, then renamed).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    let temporary = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}
