//! Parsing and validating content files.

use super::{ContentError, LearningItem, Taxonomy};
use std::path::Path;

/// Parses one content file. All problems found are returned at once.
pub fn parse_item(
    _path: &Path,
    _text: &str,
    _taxonomy: &Taxonomy,
) -> Result<LearningItem, Vec<ContentError>> {
    unimplemented!("being written")
}

/// Parses every `*.md` file under `dir`, collecting all problems.
pub fn load_dir(_dir: &Path, _taxonomy: &Taxonomy) -> (Vec<LearningItem>, Vec<ContentError>) {
    unimplemented!("being written")
}
