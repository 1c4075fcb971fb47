// Renders the admin API reference from the served OpenAPI document (Redoc, vendored).
Redoc.init("/api/openapi.json", { hideDownloadButton: false, expandResponses: "200,201" }, document.getElementById("reference"));
