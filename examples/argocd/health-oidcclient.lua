-- Argo CD health check for oidc.dcr-operator.dev/OidcClient.
-- A new client reads Reconciling=True (the CRD's status default) until the operator has seen it.
local hs = { status = "Progressing", message = "Waiting for the operator" }
if obj.status == nil or obj.status.observedGeneration ~= obj.metadata.generation then
  return hs
end
local ready, reconciling, stalled
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" then ready = c end
  if c.type == "Reconciling" then reconciling = c end
  if c.type == "Stalled" then stalled = c end
end
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = (stalled.reason or "") .. ": " .. (stalled.message or "") }
end
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = (ready.reason or "") .. ": " .. (ready.message or "") }
end
if reconciling ~= nil and reconciling.status == "True" then
  return { status = "Progressing", message = (reconciling.reason or "") .. ": " .. (reconciling.message or "") }
end
if ready ~= nil and ready.status == "False" then
  return { status = "Degraded", message = (ready.reason or "") .. ": " .. (ready.message or "") }
end
return hs
