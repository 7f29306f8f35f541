//! Why a symbol the host looks up is not found: absent, or defined but not
//! exported (a library built with `-fvisibility=hidden` against a header
//! whose declarations carry no default visibility, or a symbol declared
//! `static`). Read from the file's full symbol table (`.symtab`), which a
//! stripped library no longer has: then nothing can be said.

use object::{Object, ObjectSymbol};
use std::path::Path;

/// Whether the ELF file at `real` defines `name` in its full symbol table
/// although the dynamic linker did not find it (so it is local or hidden).
/// False when the file cannot be read or parsed, or has no `.symtab`.
pub fn defined_but_not_exported(real: &Path, name: &str) -> bool {
    let Ok(data) = std::fs::read(real) else {
        return false;
    };
    let Ok(file) = object::File::parse(&*data) else {
        return false;
    };
    file.symbols()
        .any(|s| s.is_definition() && s.name() == Ok(name))
}
