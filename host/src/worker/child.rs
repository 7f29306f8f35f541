//! The worker process's entry point (`vif-plug-host worker`, hidden): load
//! one library, pick one class by type, and serve the agent on the
//! socketpair end it was given as standard input. Its log lines go to the
//! standard error it shares with the agent, through the same logger and
//! `RUST_LOG` filter, so a provider's lines keep their target.

use super::serve::serve;
use crate::loader::load_library;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Runs the worker; returns the process exit code: 0 when the agent
/// ended the session (Destroy or closing the socket), 1 when the library
/// or the class cannot be used, 2 when the stream broke.
pub fn main(library: &Path, type_name: &str) -> u8 {
    let stream = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from);
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            log::error!("worker for {type_name}: standard input is not usable: {e}");
            return 2;
        }
    };
    let lib = match load_library(library) {
        Ok(lib) => lib,
        Err(e) => {
            log::error!("worker for {type_name}: {e}");
            return 1;
        }
    };
    let Some(class) = lib
        .classes
        .into_iter()
        .flatten()
        .find(|c| c.type_name() == type_name)
    else {
        log::error!(
            "worker: {} has no usable class of type {type_name:?}",
            library.display()
        );
        return 1;
    };
    match serve(class, &mut stream) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("worker for {type_name}: the connection to the agent broke: {e}");
            2
        }
    }
}
