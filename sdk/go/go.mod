module github.com/chaos-orchestrator/sdk-go

go 1.19
