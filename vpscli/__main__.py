from vpscli.cli import run

run()
