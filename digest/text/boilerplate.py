"""Page furniture in languages other than English: lines no article text ever is.

Shared by extraction (whole lines, `digest.collect.cleanup`) and the summarizer's rules
(sentences, `digest.summarize.rules`), which keep their English patterns themselves.
Each language has two patterns, both case-insensitive:

    start     matched at the start of a line or sentence (with the `\\b` or `$` it needs):
              updated-date lines, photo credits, "read more", share and login prompts
    anywhere  searched in it: cookie notices and "subscribers only" lines

A language without an entry gets only the neutral rules (a copyright sign, a bare URL):
English rules are never applied to another language, and one language's rules never
to another's. Each entry is a phrase seen on real pages that prose rarely opens with.
"""

from __future__ import annotations

import re
from functools import cache

_NEUTRAL = re.compile(
    r"""(?ix)(?:©|\(c\)\s|copyright\s+(?:©\s*)?\d{4}|https?://\S+$
    # a share button: the networks' names are the same in every language
    | (?:facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|telegram|google\+|tumblr
      |flipboard|messenger|e-?mail)\s*[:!]?$)"""
)

_RULES: dict[str, tuple[str, str]] = {
    "de": (
        r"""(?:(?:artikel|beitrag)\s+)?(?:zuletzt\s+)?(?:aktualisiert|veröffentlicht|geändert)
              (?:\s+am|\s*:)\s*.{0,40}\d[^!?]{0,50}$
          | stand\s*:\s*.{0,30}\d
          | (?:foto|fotos|bild|bilder|bildquelle|quelle|grafik|video|titelbild)\s*[:：].{0,150}$
          | (?:mehr\s+(?:lesen|dazu|zum\s+thema)|weiterlesen|lesen\s+sie\s+(?:auch|mehr|hier)
              |auch\s+interessant|das\s+könnte\s+sie\s+(?:auch\s+)?interessieren)\b
          | (?:anzeige|werbung)\s*$
          | (?:artikel\s+)?teilen\s*:?\s*$
          | jetzt\s+(?:einloggen|anmelden|registrieren|abonnieren)\b
          | (?:einloggen|anmelden|registrieren|abonnieren)\s*[.!:]?\s*$
          | newsletter\b.{0,60}\babonnieren""",
        r"""\b(?:eingeloggten|angemeldeten|registrierten)
              \s+(?:usern|nutzern|benutzern|mitgliedern|lesern)\b
          | \bnur\s+für\s+(?:abonnenten|abonnentinnen)\b
          | \b(?:diese\s+(?:web)?seite|wir)\s+(?:verwendet|verwenden|nutzt|nutzen)\s+cookies\b
          | \bcookie-?(?:einstellungen|richtlinie|hinweis)""",
    ),
    "fr": (
        r"""(?:(?:article|publié)\s+)?(?:mis\s+à\s+jour|publié|modifié)\s*(?:le|à|:)\s*.{0,40}\d[^!?]{0,50}$
          | (?:mise\s+à\s+jour|màj)\s*:
          | (?:photo|crédit(?:\s+photo)?|illustration|image|vidéo)s?\s*(?:[:：]|©).{0,150}$
          | (?:lire\s+(?:aussi|la\s+suite|plus)|à\s+lire\s+(?:aussi|également)|voir\s+aussi
              |en\s+savoir\s+plus)\b
          | publicité\s*$
          | partager\b.{0,20}$
          | (?:connectez-vous|identifiez-vous|abonnez-vous|inscrivez-vous)\b""",
        r"""\bréservée?s?\s+aux\s+abonnés\b
          | \b(?:ce\s+site|nous)\s+utilis\w+\s+(?:des\s+)?cookies\b
          | \b(?:paramètres|politique|gestion)\s+(?:des\s+|de\s+|relative\s+aux\s+)?cookies\b""",
    ),
    "it": (
        r"""(?:articolo\s+)?(?:aggiornato|pubblicato|modificato)\s+(?:il|alle|in\s+data)\s+.{0,40}\d[^!?]{0,50}$
          | ultimo\s+aggiornamento\b
          | (?:foto|immagin[ei]|video)\s*(?:[:：]|(?:di|da)\s+[^.!?]{1,60}$)
          | (?:leggi\s+(?:anche|tutto|di\s+più)|continua\s+a\s+leggere|potrebbe\s+interessarti)\b
          | pubblicità\s*$
          | condividi\b.{0,20}$
          | (?:accedi|registrati|abbonati)\b""",
        r"""\briservat[oaie]\s+agli\s+abbonati\b
          | \b(?:questo\s+sito|utilizziamo)\s+(?:utilizza\s+)?(?:i\s+)?cookie
          | \b(?:informativa|impostazioni)\s+(?:sui\s+|dei\s+)?cookie""",
    ),
    "es": (
        r"""(?:actualizado|publicado|modificado)\s*(?:el|a\s+las|:)\s*.{0,40}\d[^!?]{0,50}$
          | actualización\s*:
          | (?:foto|fotografía|imagen|vídeo|video)s?\s*(?:[:：]|de\s+archivo).{0,150}$
          | (?:leer\s+más|lee\s+también|lea\s+también|te\s+puede\s+interesar|sigue\s+leyendo)\b
          | publicidad\s*$
          | compartir\b.{0,20}$
          | (?:inicia\s+sesión|regístrate|suscríbete)\b""",
        r"""\bexclusivo\s+para\s+suscriptores\b
          | \b(?:este\s+sitio(?:\s+web)?|utilizamos|usamos)\s+(?:utiliza\s+|usa\s+)?cookies\b
          | \bpolítica\s+de\s+cookies\b""",
    ),
    "pt": (
        r"""(?:atualizado|actualizado|publicado|modificado)\s*(?:(?:em|a|às)\s+\d{1,2}(?:/|\s+de\s+|h)|:).{0,40}\d[^!?]{0,50}$
          | atualização\s*:
          | (?:foto|fotografia|imagem|vídeo)s?\s*(?:[:：]|de\s+arquivo).{0,150}$
          | (?:leia\s+(?:também|mais)|saiba\s+mais|continue\s+lendo|veja\s+também)\b
          | publicidade\s*$
          | (?:compartilh|partilh)\w*\b.{0,20}$
          | (?:faça\s+login|inicie\s+sessão|registe-se|cadastre-se)\b""",
        r"""\bexclusiv[oa]\s+para\s+assinantes\b
          | \b(?:este\s+site|utilizamos|usamos)\s+(?:utiliza\s+|usa\s+)?cookies\b
          | \bpolítica\s+de\s+cookies\b""",
    ),
    "nl": (
        r"""(?:laatst\s+)?(?:bijgewerkt|gepubliceerd|aangepast)\s*(?:op|om|:)\s*.{0,40}\d[^!?]{0,50}$
          | (?:foto|beeld|afbeelding|video)\s*[:：].{0,150}$
          | (?:lees\s+(?:ook|meer|verder)|meer\s+lezen)\b
          | advertentie\s*$
          | delen\b.{0,20}$
          | (?:log\s+in|inloggen|word\s+abonnee|registreer)\b""",
        r"""\balleen\s+voor\s+abonnees\b
          | \b(?:deze\s+(?:web)?site|wij)\s+(?:gebruikt|gebruiken)\s+cookies\b
          | \bcookie(?:beleid|instellingen|verklaring)\b""",
    ),
    "ru": (
        r"""(?:обновлено|опубликовано|изменено|дата\s+публикации)\s*:?\s*.{0,40}\d[^!?]{0,50}$
          | (?:фото|фотография|изображение|видео|источник\s+фото)\s*[:：].{0,150}$
          | (?:читайте\s+(?:также|далее|ещё|еще)|читать\s+(?:далее|полностью)|подробнее)\b
          | реклама\s*$
          | поделиться\b.{0,20}$
          | (?:войдите|авторизуйтесь|зарегистрируйтесь)\b""",
        r"""\bтолько\s+для\s+подписчиков\b
          | \b(?:сайт|мы)\s+использу\w+\s+(?:файлы\s+)?cookie
          | \bфайл\w*\s+cookie""",
    ),
    "cs": (
        r"""(?:aktualizováno|publikováno|upraveno)\s*:?\s*.{0,40}\d[^!?]{0,50}$
          | (?:foto|obrázek|video|zdroj)\s*[:：].{0,150}$
          | (?:čtěte\s+(?:také|též|více)|přečtěte\s+si\s+(?:také|více)|více\s+informací)\b
          | reklama\s*$
          | sdílet\b.{0,20}$
          | (?:přihlaste\s+se|přihlásit\s+se|zaregistrujte\s+se|předplaťte\s+si)\b""",
        r"""\bpouze\s+pro\s+předplatitele\b
          | \b(?:tento\s+web|tyto\s+stránky|používáme)\s+(?:používá\s+|používají\s+)?
              (?:soubory\s+)?cookies\b""",
    ),
    "ja": (
        r"""(?:最終)?(?:更新日?|公開日|配信日|投稿日)(?:時)?\s*[:：]?\s*\d
          | (?:写真|画像|動画|提供|出典)\s*[:：／/]
          | (?:続きを読む|もっと読む|関連記事|あわせて読みたい|こちらもおすすめ)
          | 広告\s*$
          | (?:シェア|共有)する?\s*$
          | (?:ログイン|会員登録)(?:する|して|はこちら)?\s*$""",
        r"""(?:会員限定|有料会員限定|ログインが必要|ログインすると)
          | (?:クッキー|cookie)\s*(?:を使用|を利用|ポリシー)""",
    ),
    "zh": (
        r"""(?:更新|发布|發布|来源|來源)(?:时间|時間|日期)\s*[:：]
          | (?:更新|发布|發布)于\s*\d
          | (?:图片来源|圖片來源|图片|圖片|摄影|攝影|图|圖|视频|視頻)\s*[:：／/]
          | (?:阅读更多|閱讀更多|阅读全文|閱讀全文|相关阅读|相關閱讀|延伸阅读|延伸閱讀)
          | (?:广告|廣告)\s*$
          | (?:分享|转发|轉發)(?:到|至)?\s*[:：]?\s*$
          | (?:请|請)?(?:先)?(?:登录|登錄|注册|註冊)\s*$""",
        r"""(?:登录后|登錄後)(?:可|才能)
          | (?:本网站|本網站|我们|我們)(?:使用|采用|採用)\s*cookie""",
    ),
}


@cache
def _compiled(language: str) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    """Compile one language's rules on first use."""
    rules = _RULES.get(language)
    if rules is None:
        return None
    start, anywhere = rules
    return (re.compile(start, re.I | re.X), re.compile(anywhere, re.I | re.X))


def has_rules(language: str | None) -> bool:
    """Return True when `language` (ISO 639-1) has furniture rules of its own here."""
    return (language or "") in _RULES


def is_furniture(text: str, language: str | None) -> bool:
    """Return True for a line or sentence that is page furniture in `language` (ISO 639-1).

    Only the neutral rules and `language`'s own apply; English is handled by the callers.
    """
    text = text.strip()
    if _NEUTRAL.match(text):
        return True
    rules = _compiled(language or "")
    if rules is None:
        return False
    start, anywhere = rules
    return bool(start.match(text) or anywhere.search(text))
