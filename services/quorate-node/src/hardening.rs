//! What the node does to its own process before it holds any key or plaintext: no core
//! dumps (a crash must not write memory to disk), not dumpable (no ptrace or /proc/PID/mem
//! by other processes of the same user), and memory locked so that nothing is swapped out,
//! where the system allows it.

use rustix::{
    mm::{MlockAllFlags, mlockall},
    process::{DumpableBehavior, Resource, Rlimit, getrlimit, set_dumpable_behavior, setrlimit},
};

/// What could be done; the node refuses to run when core dumps could not be turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardened {
    /// Memory is locked (all pages, now and later).
    pub memory_locked: bool,
}

/// Turns core dumps and dumpability off (required) and locks memory (best effort: only
/// when the memory-lock limit is unlimited, since a limit would make later allocations
/// fail).
pub fn harden() -> Result<Hardened, String> {
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|error| format!("cannot turn core dumps off: {error}"))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|error| format!("cannot make the process non-dumpable: {error}"))?;
    let unlimited = getrlimit(Resource::Memlock).current.is_none();
    let memory_locked =
        unlimited && mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE).is_ok();
    Ok(Hardened { memory_locked })
}

/// Whether core dumps are off for this process.
pub fn core_dumps_off() -> bool {
    getrlimit(Resource::Core).current == Some(0)
}
