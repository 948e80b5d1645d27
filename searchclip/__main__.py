from searchclip._cli import main

main()
