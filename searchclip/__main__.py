from searchclip.cli import main

main()
