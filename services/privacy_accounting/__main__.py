from services.privacy_accounting.bootstrap import main

main()
