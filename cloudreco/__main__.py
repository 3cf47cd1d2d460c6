from cloudreco.cli import main

main()
