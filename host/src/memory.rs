//! Giving memory back to the system after a burst (glibc's allocator only;
//! elsewhere these are no-ops).
//!
//! Plugging thousands of ports at once parses a few large database updates
//! and builds one large transaction; all of it is freed when the batch is
//! done, but glibc keeps freed memory in the process, spread over one arena
//! per thread that allocated it (the connection threads parse, the main
//! loop frees). Left alone, an agent that once plugged 5,000 ports holds
//! the peak for good. So the agent limits glibc to a few arenas at start
//! (`M_ARENA_MAX`, as `MALLOC_ARENA_MAX` would), and returns free pages
//! after a burst (`malloc_trim`), while it is about to sleep anyway.

/// Arenas glibc may create: the main one and one shared by the connection
/// threads.
const ARENA_MAX: libc::c_int = 2;

/// Limits glibc's arenas; call once at start, before threads are spawned.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX
        // with a positive value is documented as always valid.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) };
        if ok != 1 {
            log::debug!("mallopt(M_ARENA_MAX, {ARENA_MAX}) refused");
        }
    }
}

/// Returns free heap pages to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases memory glibc holds free; it
        // touches no live allocation and is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
