//! The plugin's modules keep the rooms' order, so no import cycle can form
//! (the rule: `plugins/testing/layering.rs`).

#[path = "../../testing/layering.rs"]
mod layering;

#[test]
fn each_module_uses_only_the_rooms_below_its_own() {
    layering::assert_layered(env!("CARGO_MANIFEST_DIR"));
}
