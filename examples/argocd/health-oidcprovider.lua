-- Argo CD health check for oidc.dcr-operator.dev/OidcProvider and ClusterOidcProvider.
-- Ready says whether discovery and the registration endpoint answer.
local hs = { status = "Progressing", message = "Waiting for the operator to check the provider" }
if obj.status == nil or obj.status.observedGeneration ~= obj.metadata.generation then
  return hs
end
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" and c.status == "True" then
    return { status = "Healthy", message = (c.reason or "") .. ": " .. (c.message or "") }
  end
  if c.type == "Ready" and c.status == "False" then
    return { status = "Degraded", message = (c.reason or "") .. ": " .. (c.message or "") }
  end
end
return hs
