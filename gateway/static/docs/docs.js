// Swagger UI over the gateway's own description. validatorUrl null: Swagger UI would
// otherwise send the description to an online validator for its badge.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  layout: "BaseLayout",
});
