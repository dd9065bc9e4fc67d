pytest_plugins = ["parkstream.testing.fixtures"]
