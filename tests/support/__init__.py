"""What the tests share: servers, seeded stores, running the command, the outside programs."""
