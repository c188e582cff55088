from services.compliance.bootstrap import main

main()
