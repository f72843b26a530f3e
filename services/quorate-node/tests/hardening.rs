//! The node's process hardening, in a test process of its own: after `harden`, core dumps
//! are off and the process is not dumpable.

#[test]
fn core_dumps_are_off_and_the_process_is_not_dumpable() {
    let hardened = quorate_node::hardening::harden().unwrap();
    assert!(quorate_node::hardening::core_dumps_off());
    assert_eq!(
        rustix::process::dumpable_behavior().unwrap(),
        rustix::process::DumpableBehavior::NotDumpable
    );
    let unlimited = rustix::process::getrlimit(rustix::process::Resource::Memlock)
        .current
        .is_none();
    assert_eq!(
        hardened.memory_locked, unlimited,
        "locked exactly where the system allows it"
    );
}
