from cloudreco.cli import main

main(prog_name="cloudreco")
