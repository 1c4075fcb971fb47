//! Guest bindings for the project's `gateway-core` world: the `wasi:keyvalue`
//! imports and the `tollgate:gateway/policy` export, plus `tollgate:gateway/counters`
//! in the build the Tollgate edge embeds (`edge` feature). The `wasi:http` side
//! comes from spin-sdk's `#[http_component]`.

// Generate the wasi:keyvalue imports here rather than mapping them to spin-sdk's
// copy, which would tie this crate to spin-sdk internals.
#[cfg(not(feature = "edge"))]
wit_bindgen::generate!({
    world: "gateway-core",
    path: "../wit",
    generate_all,
});

#[cfg(feature = "edge")]
wit_bindgen::generate!({
    world: "gateway-core-edge",
    path: "../wit",
    generate_all,
});
