// lua-health runs an Argo CD resource health check (Lua) against Kubernetes objects, with
// github.com/yuin/gopher-lua, the Lua VM Argo CD itself uses. The script gets the object as the
// global `obj` and returns a table {status=..., message=...}, exactly like an Argo CD
// resource.customizations.health.<group_kind> script.
//
// Usage: lua-health <script.lua> < objects.json   (a JSON array of objects)
// Prints a JSON array of {"status": ..., "message": ...}, one per object.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lua-health <script.lua> < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	var objects []map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fail(fmt.Errorf("decode objects: %w", err))
	}
	out := make([]result, 0, len(objects))
	for _, obj := range objects {
		r, err := run(string(script), obj)
		if err != nil {
			fail(err)
		}
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

// run evaluates the script in a fresh VM with the safe base libraries Argo CD opens
// (base, table, string, math), the object as global `obj`.
func run(script string, obj map[string]any) (result, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return result{}, fmt.Errorf("lua: %w", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return result{}, fmt.Errorf("lua: script returned %s, want a table", L.Get(-1).Type())
	}
	return result{
		Status:  lua.LVAsString(ret.RawGetString("status")),
		Message: lua.LVAsString(ret.RawGetString("message")),
	}, nil
}

// toLua converts decoded JSON the way Argo CD's luar-based conversion does for health checks:
// objects and arrays become tables (arrays 1-indexed), scalars stay scalars, null becomes nil.
func toLua(L *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case map[string]any:
		tbl := L.NewTable()
		for k, val := range t {
			tbl.RawSetString(k, toLua(L, val))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, val := range t {
			tbl.Append(toLua(L, val))
		}
		return tbl
	case string:
		return lua.LString(t)
	case float64:
		return lua.LNumber(t)
	case bool:
		return lua.LBool(t)
	default:
		return lua.LNil
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lua-health:", err)
	os.Exit(1)
}
