from albatross.cli import main

raise SystemExit(main())
