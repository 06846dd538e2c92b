# Board profile: the development host (x86_64). Settings only, no code.
# Used by the tests and by `make run`.
BOARD_DESC        := Development host, x86_64, Paddle Lite from the pip wheel
LITE_TARGET       := x86
