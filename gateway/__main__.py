from gateway.cli.commands import main

main()
