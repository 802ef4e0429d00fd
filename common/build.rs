//! With the `openapi` feature (the host's OpenAPI document), alloy's primitive types are
//! described as the strings they serialize to. Without it, this does nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "openapi")]
    utoipa_config::Config::new()
        .alias_for("Address", "String")
        .alias_for("B256", "String")
        .alias_for("U256", "String")
        .alias_for("Bytes", "String")
        .write_to_file();
}
