from services.registry.bootstrap import main

main()
