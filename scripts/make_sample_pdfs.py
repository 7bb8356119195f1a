#!/usr/bin/env python
"""Generate the bundled sample inputs of the pipeline.

Writes three files, all fictional (the university, its bodies, people, case
numbers and rules were invented for this project; no real institution's text
is reproduced):

* ``data/raw/pdfs/regulamento_estagio.pdf`` -- born-digital, 3 pages, with a
  text layer: "Resolução nº 12/2023 – CONSEPE", on supervised internships;
* ``data/raw/pdfs/resolucao_trancamento_scan.pdf`` -- image-only, 2 pages
  (simulated scan, needs OCR): "Resolução nº 07/2022 – CEG", on enrolment
  suspension and credit transfer;
* ``data/raw/qa/regulamentos_qa.json`` -- question/answer pairs about both
  documents, in the shape people share after generating pairs with an LLM.
  Three of the pairs are *not* supported by either document (they talk
  about things the texts never mention) so that a grounding filter has
  something to reject.

Every page carries the same running header and a "Página N de M" footer, so
that a cleaning step has boilerplate to remove.

Usage::

    python scripts/make_sample_pdfs.py [--out-dir DATA_RAW_DIR]

The output is reproducible: running the script again gives identical files.
"""
# The document texts below keep one paragraph per source line on purpose
# (the generator wraps them), hence the long lines.
# ruff: noqa: E501

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.pdfgen import scanned_pdf, text_pdf  # noqa: E402

HEADER = "Universidade Federal do Vale do Araguaia – Pró-Reitoria de Graduação"
FOOTER = "Página {page} de {pages}"

# --------------------------------------------------------------------------
# a. Resolução nº 12/2023 – CONSEPE (estágio) -- born-digital, 3 pages
# --------------------------------------------------------------------------

ESTAGIO_TITLE = "Resolução nº 12/2023 – CONSEPE – Estágios supervisionados"

ESTAGIO_PAGES = [
    """\
RESOLUÇÃO Nº 12/2023 – CONSEPE

Dispõe sobre a realização de estágios supervisionados, obrigatórios e não obrigatórios, nos cursos de graduação da Universidade Federal do Vale do Araguaia – UFVA.

O CONSELHO DE ENSINO, PESQUISA E EXTENSÃO da Universidade Federal do Vale do Araguaia, no uso de suas atribuições estatutárias e regimentais, considerando o disposto na Lei nº 11.788, de 25 de setembro de 2008, e o que consta do Processo nº 23115.004512/2023-41, em sessão ordinária realizada em 15 de março de 2023,

RESOLVE:

CAPÍTULO I – DAS DISPOSIÇÕES GERAIS

Art. 1º Estágio é o ato educativo escolar supervisionado, desenvolvido no ambiente de trabalho, que visa à preparação para o trabalho produtivo de estudantes regularmente matriculados nos cursos de graduação da UFVA.

Art. 2º O estágio poderá ser obrigatório ou não obrigatório, conforme determinação do Projeto Pedagógico do Curso (PPC).
§ 1º Estágio obrigatório é aquele definido como tal no PPC, cuja carga horária é requisito para aprovação e obtenção do diploma.
§ 2º Estágio não obrigatório é aquele desenvolvido como atividade opcional, acrescida à carga horária regular e obrigatória do curso.

Art. 3º São objetivos do estágio:
I – proporcionar ao estudante a aplicação prática dos conhecimentos adquiridos no curso;
II – promover a integração entre a Universidade e a sociedade;
III – contribuir para o desenvolvimento de competências próprias da atividade profissional.

CAPÍTULO II – DA JORNADA E DAS CONDIÇÕES

Art. 4º A jornada de atividades em estágio não poderá ultrapassar 6 (seis) horas diárias e 30 (trinta) horas semanais.
Parágrafo único. Nos períodos de avaliação acadêmica, a carga horária do estágio será reduzida pelo menos à metade, mediante comprovação apresentada pelo estudante à parte concedente.
""",
    """\
Art. 5º A realização do estágio depende da celebração de termo de compromisso entre o estudante, a parte concedente e a UFVA, assinado antes do início das atividades.
§ 1º O termo de compromisso deverá ser protocolado na Coordenação de Estágios com antecedência mínima de 10 (dez) dias úteis da data de início do estágio.
§ 2º Não será computada a carga horária de atividades realizadas antes da assinatura do termo de compromisso por todas as partes.

Art. 6º O estudante em estágio deverá estar segurado contra acidentes pessoais, com apólice compatível com valores de mercado.
§ 1º No estágio obrigatório, a contratação do seguro contra acidentes pessoais é de responsabilidade da UFVA.
§ 2º No estágio não obrigatório, a contratação do seguro é de responsabilidade da parte concedente.

Art. 7º No estágio não obrigatório, é compulsória a concessão de bolsa e de auxílio-transporte ao estudante.

Art. 8º A duração do estágio na mesma parte concedente não poderá exceder 2 (dois) anos, exceto quando se tratar de estudante com deficiência.

CAPÍTULO III – DA ORIENTAÇÃO E DO ACOMPANHAMENTO

Art. 9º Todo estágio terá um orientador docente, pertencente ao quadro efetivo da UFVA e vinculado à área de conhecimento do curso, e um supervisor indicado pela parte concedente.
Parágrafo único. Cada orientador docente poderá acompanhar, no máximo, 10 (dez) estagiários simultaneamente.

Art. 10. Compete ao orientador docente:
I – aprovar o plano de atividades do estagiário;
II – acompanhar e avaliar o desenvolvimento do estágio;
III – analisar o relatório semestral de atividades apresentado pelo estudante;
IV – comunicar à Coordenação de Estágios qualquer irregularidade constatada.
""",
    """\
Art. 11. O estudante deverá apresentar relatório semestral de atividades, com o visto do supervisor, no prazo de até 30 (trinta) dias após o encerramento de cada semestre letivo.
§ 1º Ao término do estágio, o estudante entregará relatório final ao orientador docente no prazo de 30 (trinta) dias.
§ 2º A não apresentação dos relatórios no prazo implicará a reprovação no estágio obrigatório ou o cancelamento do termo de compromisso do estágio não obrigatório.

Art. 12. O estágio obrigatório será avaliado pelo orientador docente, com nota de 0 (zero) a 10 (dez), sendo considerado aprovado o estudante que obtiver nota igual ou superior a 6,0 (seis).

CAPÍTULO IV – DAS DISPOSIÇÕES FINAIS

Art. 13. As atividades de extensão, de monitoria e de iniciação científica somente poderão ser equiparadas ao estágio obrigatório quando houver previsão expressa no PPC.

Art. 14. Os casos omissos serão resolvidos pela Pró-Reitoria de Graduação, ouvida a Coordenação de Estágios.

Art. 15. Esta Resolução entra em vigor na data de sua publicação, revogando-se a Resolução nº 04/2015 – CONSEPE.

Porto Alvorada do Araguaia, 15 de março de 2023.

Prof.ª Dr.ª Helena Martins Carvalho
Presidente do CONSEPE
""",
]

# --------------------------------------------------------------------------
# b. Resolução nº 07/2022 – CEG (trancamento) -- scanned, 2 pages
# --------------------------------------------------------------------------

TRANCAMENTO_TITLE = "Resolução nº 07/2022 – CEG – Trancamento e aproveitamento de estudos"

TRANCAMENTO_PAGES = [
    """\
RESOLUÇÃO Nº 07/2022 – CEG

Estabelece normas para o trancamento de matrícula e o aproveitamento de estudos nos cursos de graduação da UFVA.

A CÂMARA DE ENSINO DE GRADUAÇÃO da Universidade Federal do Vale do Araguaia, no uso de suas atribuições, em reunião ordinária realizada em 22 de agosto de 2022,

RESOLVE:

Art. 1º O trancamento de matrícula é a interrupção temporária das atividades acadêmicas, a pedido do estudante, sem perda do vínculo com a Universidade.

Art. 2º O trancamento poderá ser total ou parcial.
§ 1º O trancamento total abrange todas as disciplinas do período letivo e poderá ser concedido por, no máximo, 4 (quatro) semestres letivos, consecutivos ou não, durante todo o curso.
§ 2º O trancamento parcial abrange disciplinas isoladas e deverá ser solicitado até o fim da 8ª (oitava) semana do período letivo.
§ 3º Não será concedido trancamento total no primeiro semestre letivo do curso, salvo por motivo de saúde devidamente comprovado.

Art. 3º O pedido de trancamento será feito pelo estudante no Sistema Acadêmico, no prazo previsto no Calendário Acadêmico.
Parágrafo único. O estudante com trancamento total deverá renovar a matrícula no período seguinte ao término do trancamento, sob pena de abandono de curso.

Art. 4º É vedado o trancamento:
I – de disciplina na qual o estudante já tenha sido reprovado por frequência;
II – de disciplina cursada em regime de dependência;
III – quando o estudante estiver respondendo a processo disciplinar.
""",
    """\
Art. 5º Aproveitamento de estudos é o reconhecimento de disciplinas cursadas com aprovação em outro curso de graduação, na UFVA ou em outra instituição de ensino superior.

Art. 6º O aproveitamento será concedido quando houver equivalência de, no mínimo, 75% (setenta e cinco por cento) do conteúdo programático e da carga horária da disciplina pretendida.
§ 1º O pedido deverá ser instruído com histórico escolar e programas das disciplinas, autenticados pela instituição de origem.
§ 2º Não serão aproveitadas disciplinas cursadas há mais de 10 (dez) anos.

Art. 7º O pedido de aproveitamento será analisado pelo Colegiado do Curso, que terá o prazo de 20 (vinte) dias úteis para emitir parecer.
Parágrafo único. Da decisão do Colegiado caberá recurso à Câmara de Ensino de Graduação, no prazo de 10 (dez) dias contados da ciência do resultado.

Art. 8º O total de disciplinas aproveitadas não poderá ultrapassar 50% (cinquenta por cento) da carga horária total do curso.

Art. 9º Os casos omissos serão resolvidos pela Câmara de Ensino de Graduação.

Art. 10. Esta Resolução entra em vigor em 1º de setembro de 2022.

Porto Alvorada do Araguaia, 22 de agosto de 2022.

Prof. Dr. Ricardo Almeida Sousa
Presidente da Câmara de Ensino de Graduação
""",
]

# Scan settings for the sample: 200 dpi and little noise, so tesseract
# (``por``) reads it well; a low JPEG quality keeps the file under 300 KB
# without hurting OCR (measured: >= 95% of the words recovered per page).
SCAN_SETTINGS = dict(
    dpi=200, noise=0.002, skew_degrees=0.6, seed=7, blur=0.9, jpeg_quality=25
)

# --------------------------------------------------------------------------
# c. Question/answer pairs
# --------------------------------------------------------------------------

QA_PAIRS = [
    # -- Resolução nº 12/2023 – CONSEPE (estágio) --
    {
        "Pergunta": "Qual é a carga horária máxima de um estágio na UFVA?",
        "Resposta": "A jornada de atividades em estágio não poderá ultrapassar 6 (seis) horas diárias e 30 (trinta) horas semanais.",
    },
    {
        "Pergunta": "O que é estágio obrigatório segundo a Resolução nº 12/2023 do CONSEPE?",
        "Resposta": "Estágio obrigatório é aquele definido como tal no Projeto Pedagógico do Curso, cuja carga horária é requisito para aprovação e obtenção do diploma.",
    },
    {
        "Pergunta": "O que caracteriza o estágio não obrigatório?",
        "Resposta": "O estágio não obrigatório é aquele desenvolvido como atividade opcional, acrescida à carga horária regular e obrigatória do curso.",
    },
    {
        "Pergunta": "O que acontece com a carga horária do estágio nos períodos de avaliação acadêmica?",
        "Resposta": "Nos períodos de avaliação acadêmica, a carga horária do estágio será reduzida pelo menos à metade, mediante comprovação apresentada pelo estudante à parte concedente.",
    },
    {
        "Pergunta": "Com que antecedência o termo de compromisso deve ser protocolado?",
        "Resposta": "O termo de compromisso deverá ser protocolado na Coordenação de Estágios com antecedência mínima de 10 (dez) dias úteis da data de início do estágio.",
    },
    {
        "Pergunta": "As atividades realizadas antes da assinatura do termo de compromisso contam como carga horária de estágio?",
        "Resposta": "Não, não será computada a carga horária de atividades realizadas antes da assinatura do termo de compromisso por todas as partes.",
    },
    {
        "Pergunta": "Quem é responsável pelo seguro contra acidentes pessoais no estágio obrigatório?",
        "Resposta": "No estágio obrigatório, a contratação do seguro contra acidentes pessoais é de responsabilidade da UFVA.",
    },
    {
        "Pergunta": "E no estágio não obrigatório, quem contrata o seguro?",
        "Resposta": "No estágio não obrigatório, a contratação do seguro é de responsabilidade da parte concedente.",
    },
    {
        "Pergunta": "O estagiário em estágio não obrigatório tem direito a bolsa?",
        "Resposta": "Sim, no estágio não obrigatório é compulsória a concessão de bolsa e de auxílio-transporte ao estudante.",
    },
    {
        "Pergunta": "Por quanto tempo um estudante pode estagiar na mesma parte concedente?",
        "Resposta": "A duração do estágio na mesma parte concedente não poderá exceder 2 (dois) anos, exceto quando se tratar de estudante com deficiência.",
    },
    {
        "Pergunta": "Qual é o horário de funcionamento da Biblioteca Central aos sábados?",
        "Resposta": "Aos sábados, a Biblioteca Central funciona das 8h às 12h, exclusivamente para empréstimo e devolução de livros.",
    },
    {
        "Pergunta": "Quantos estagiários um orientador docente pode acompanhar ao mesmo tempo?",
        "Resposta": "Cada orientador docente poderá acompanhar, no máximo, 10 (dez) estagiários simultaneamente.",
    },
    # -- Resolução nº 07/2022 – CEG (trancamento) --
    {
        "Pergunta": "O que é trancamento de matrícula na UFVA?",
        "Resposta": "O trancamento de matrícula é a interrupção temporária das atividades acadêmicas, a pedido do estudante, sem perda do vínculo com a Universidade.",
    },
    {
        "Pergunta": "Por quantos semestres é possível trancar totalmente a matrícula?",
        "Resposta": "O trancamento total poderá ser concedido por, no máximo, 4 (quatro) semestres letivos, consecutivos ou não, durante todo o curso.",
    },
    {
        "Pergunta": "Qual é o valor da refeição no Restaurante Universitário para estudantes de graduação?",
        "Resposta": "Os estudantes de graduação pagam R$ 3,50 por refeição no Restaurante Universitário, e os bolsistas da assistência estudantil são isentos.",
    },
    {
        "Pergunta": "Até quando o estudante pode pedir o trancamento parcial de disciplinas?",
        "Resposta": "O trancamento parcial deverá ser solicitado até o fim da 8ª (oitava) semana do período letivo.",
    },
    {
        "Pergunta": "É possível trancar a matrícula no primeiro semestre do curso?",
        "Resposta": "Não será concedido trancamento total no primeiro semestre letivo do curso, salvo por motivo de saúde devidamente comprovado.",
    },
    {
        "Pergunta": "Em quais situações o trancamento é vedado?",
        "Resposta": "É vedado o trancamento de disciplina na qual o estudante já tenha sido reprovado por frequência, de disciplina cursada em regime de dependência e quando o estudante estiver respondendo a processo disciplinar.",
    },
    {
        "Pergunta": "O que deve fazer o estudante ao final do trancamento total?",
        "Resposta": "O estudante com trancamento total deverá renovar a matrícula no período seguinte ao término do trancamento, sob pena de abandono de curso.",
    },
    {
        "Pergunta": "Quantas horas de atividades complementares são exigidas para a colação de grau?",
        "Resposta": "Para colar grau, o estudante precisa comprovar 200 horas de atividades complementares, registradas até o último semestre do curso.",
    },
    {
        "Pergunta": "Qual é a equivalência mínima exigida para o aproveitamento de estudos?",
        "Resposta": "O aproveitamento será concedido quando houver equivalência de, no mínimo, 75% (setenta e cinco por cento) do conteúdo programático e da carga horária da disciplina pretendida.",
    },
    {
        "Pergunta": "Disciplinas cursadas há muito tempo podem ser aproveitadas?",
        "Resposta": "Não serão aproveitadas disciplinas cursadas há mais de 10 (dez) anos.",
    },
    # -- back to the internship resolution --
    {
        "Pergunta": "Qual é o prazo para entregar o relatório semestral de atividades do estágio?",
        "Resposta": "O estudante deverá apresentar o relatório semestral de atividades, com o visto do supervisor, no prazo de até 30 (trinta) dias após o encerramento de cada semestre letivo.",
    },
    {
        "Pergunta": "Qual nota é necessária para ser aprovado no estágio obrigatório?",
        "Resposta": "É considerado aprovado no estágio obrigatório o estudante que obtiver nota igual ou superior a 6,0 (seis), em uma escala de 0 (zero) a 10 (dez).",
    },
    {
        "Pergunta": "Quem resolve os casos omissos da resolução de estágios?",
        "Resposta": "Os casos omissos serão resolvidos pela Pró-Reitoria de Graduação, ouvida a Coordenação de Estágios.",
    },
    # -- back to the trancamento resolution --
    {
        "Pergunta": "Qual é o prazo do Colegiado do Curso para analisar um pedido de aproveitamento de estudos?",
        "Resposta": "O Colegiado do Curso terá o prazo de 20 (vinte) dias úteis para emitir parecer sobre o pedido de aproveitamento.",
    },
    {
        "Pergunta": "Qual é o limite de disciplinas aproveitadas em relação ao curso?",
        "Resposta": "O total de disciplinas aproveitadas não poderá ultrapassar 50% (cinquenta por cento) da carga horária total do curso.",
    },
]


def build(out_dir: Path) -> list[Path]:
    """Write the sample files under ``out_dir`` (normally ``data/raw``)."""
    pdf_dir = out_dir / "pdfs"
    qa_dir = out_dir / "qa"

    estagio = pdf_dir / "regulamento_estagio.pdf"
    text_pdf(estagio, ESTAGIO_PAGES, title=ESTAGIO_TITLE, header=HEADER, footer=FOOTER)

    trancamento = pdf_dir / "resolucao_trancamento_scan.pdf"
    scanned_pdf(
        trancamento,
        TRANCAMENTO_PAGES,
        title=TRANCAMENTO_TITLE,
        header=HEADER,
        footer=FOOTER,
        **SCAN_SETTINGS,
    )

    qa = qa_dir / "regulamentos_qa.json"
    qa.parent.mkdir(parents=True, exist_ok=True)
    qa.write_text(json.dumps(QA_PAIRS, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return [estagio, trancamento, qa]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPO_ROOT / "data" / "raw",
        help="directory that receives pdfs/ and qa/ (default: data/raw)",
    )
    args = parser.parse_args(argv)
    for path in build(args.out_dir):
        print(f"{path}  ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
