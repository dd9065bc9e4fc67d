from parkstream.cli import main

raise SystemExit(main())
