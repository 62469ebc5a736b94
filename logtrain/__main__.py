from logtrain.cli import main

raise SystemExit(main())
