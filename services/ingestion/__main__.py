from services.ingestion.bootstrap import main

main()
