// Command kube-apiserver is a thin wrapper around the upstream kube-apiserver
// command. It exists only so that the API server can be built from the Go
// module proxy (k8s.io/kubernetes cannot be `go install`ed directly because
// its go.mod replaces the staging modules with local paths). See ../README.md.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
