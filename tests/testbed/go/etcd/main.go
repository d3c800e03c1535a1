// Command etcd is etcd's own server main, built from this wrapper module so
// that the binary is named etcd and its version is pinned in go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
