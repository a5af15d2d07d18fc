// Tiny Argo CD health-check runner for the tests (gopher-lua is the Lua VM Argo CD uses).
module github.com/oidc-client-operator/tools/lua-health

go 1.26.0

require github.com/yuin/gopher-lua v1.1.2
