# Board profile: the development host (x86_64). Settings only, no code.
# Used by the tests and by `make run`.
BOARD_DESC        := Development host, x86_64, Paddle Lite from the pip wheel
LITE_TARGET       := x86
# Memory for all edgeapp processes (MB): `make run` passes it as EDGEAPP_MEMORY_BUDGET_MB.
# Measured total on this host with the bundled models: about 1000 MB (README, Memory).
MEMORY_BUDGET_MB  := 1536
