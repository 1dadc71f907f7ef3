// Command etcd is etcd v3.6 (go.etcd.io/etcd/server/v3, pinned in go.mod) for the local
// control plane of `make cluster-test`. Tooling, not product.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
