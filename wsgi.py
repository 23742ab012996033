from runai_submit.app import create_app

app = create_app()
