from mlspec._entry import main

main()
