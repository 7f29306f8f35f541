//! The code blocks of the project's guides, so that tests run what the
//! guides tell users to run.

use std::path::Path;
use std::process::{Command, Output};

/// The section of `doc` (Markdown) that starts with the heading line
/// `heading` (e.g. `"## Testing your provider under valgrind and ASan"`)
/// and ends before the next heading of the same or a higher level.
///
/// # Panics
/// If the heading is missing: the guide and its test disagree.
pub fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .match_indices(heading)
        .find(|(i, _)| *i == 0 || doc[..*i].ends_with('\n'))
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("heading {heading:?} in the guide"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let body = &doc[start + heading.len()..];
    let mut in_fence = false;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.starts_with("```") {
            in_fence = !in_fence;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !in_fence && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        offset += line.len();
    }
    &doc[start..start + heading.len() + offset]
}

/// The bodies of the fenced blocks of language `lang` (```` ```sh ````) in
/// `text`, in order.
pub fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let end = body.find("```\n").expect("a closing fence");
        out.push(body[..end].to_owned());
        rest = &body[end..];
    }
    out
}

/// Runs `script` with `sh -eu` in `dir`, with `bin` first on `PATH` and the
/// extra environment `env`.
pub fn run_sh(script: &str, dir: &Path, bin: &Path, env: &[(&str, &str)]) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-eu", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .expect("sh runs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_ends_at_the_next_heading_of_its_level_outside_fences() {
        let doc = "# T\n## A\ntext\n```sh\n## not a heading\necho a\n```\n### A.1\n```sh\necho b\n```\n## B\n```sh\necho c\n```\n";
        let a = section(doc, "## A");
        assert_eq!(blocks(a, "sh"), ["## not a heading\necho a\n", "echo b\n"]);
        assert_eq!(blocks(section(doc, "## B"), "sh"), ["echo c\n"]);
        assert_eq!(blocks(section(doc, "### A.1"), "sh"), ["echo b\n"]);
    }
}
