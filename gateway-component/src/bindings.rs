//! Guest bindings for the project's `gateway-core` world: the `wasi:keyvalue`
//! imports and the `tollgate:gateway/policy` export. The `wasi:http` side comes
//! from spin-sdk's `#[http_component]`.

wit_bindgen::generate!({
    world: "gateway-core",
    path: "../wit",
    // Generate the wasi:keyvalue imports here rather than mapping them to
    // spin-sdk's copy, which would tie this crate to spin-sdk internals.
    generate_all,
});
