//! Embeds the demo project (`config/demo/`) and the default templates
//! (`templates/`) in the binary, so `cascade init` and `cascade demo` work
//! from an installed binary with no checkout beside it.

use std::path::{Path, PathBuf};

fn main() {
    // Read at run time, not with env!(): a build script compiled in one
    // checkout can be run for another (cargo shares it when the hashes
    // match), and would then read the first checkout's files.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../..");
    let mut files = Vec::new();
    for (dir, prefix) in [("config/demo", ""), ("templates", "templates/")] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut found = Vec::new();
        walk(&dir, &mut found);
        assert!(
            !found.is_empty(),
            "{} holds no files: the demo project and templates must be embedded",
            dir.display()
        );
        found.sort();
        for path in found {
            let rel = path.strip_prefix(&dir).expect("walked under dir");
            let rel = rel.to_string_lossy().replace('\\', "/");
            files.push(format!(
                "    ({:?}, include_str!({:?})),\n",
                format!("{prefix}{rel}"),
                path.canonicalize()
                    .expect("file exists")
                    .display()
                    .to_string()
            ));
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("embedded.rs"),
        format!(
            "/// (path within a project, contents)\npub const PROJECT_FILES: &[(&str, &str)] = &[\n{}];\n",
            files.concat()
        ),
    )
    .expect("OUT_DIR is writable");
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}
