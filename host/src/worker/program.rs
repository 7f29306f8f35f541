//! Which program a worker is started from: the agent's own binary, even
//! after an upgrade replaced the file it was started from.

use std::path::{Path, PathBuf};

/// The file `exe` when it is still the one this process was started from;
/// else (an upgrade replaced it, and its worker might not speak this
/// agent's protocol) the agent's own image, `/proc/self/exe`, said once.
/// Not always `/proc/self/exe`: under valgrind that names valgrind itself.
pub(crate) fn worker_program(exe: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    use std::sync::OnceLock;
    static STARTED_FROM: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    static SAID: std::sync::Once = std::sync::Once::new();
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    // The file at `exe` when the first worker started (at start-up): not
    // /proc/self/exe, which under valgrind is valgrind.
    let started = *STARTED_FROM.get_or_init(|| id(exe));
    if started.is_none() || id(exe) == started {
        return exe.to_owned();
    }
    SAID.call_once(|| {
        log::warn!(
            "{} was replaced since the agent started (an upgrade?): workers run the agent's own version; restart the agent to run the new one",
            exe.display()
        )
    });
    PathBuf::from("/proc/self/exe")
}
