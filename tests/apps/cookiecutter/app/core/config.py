from pydantic import BaseSettings


class Settings(BaseSettings):
    PROJECT_NAME: str = "cookiecutter"
    API_V1_STR: str = "/api/v1"
    SECRET_KEY: str = "change this in production"
    ACCESS_TOKEN_EXPIRE_MINUTES: int = 60 * 24 * 8
    SQLALCHEMY_DATABASE_URI: str = "postgresql://postgres@127.0.0.1:5432/app"
    FIRST_SUPERUSER: str = "admin@example.com"
    FIRST_SUPERUSER_PASSWORD: str = "changethis"

    class Config:
        case_sensitive = True


settings = Settings()
