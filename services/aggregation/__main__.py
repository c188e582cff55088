from services.aggregation.bootstrap import main

main()
