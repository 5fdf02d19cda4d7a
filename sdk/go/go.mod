module chaosctl.dev/sdk/go

go 1.19
