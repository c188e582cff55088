from services.key_custody.bootstrap import main

main()
