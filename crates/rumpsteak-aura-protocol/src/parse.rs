//! The text syntax: a hand-written lexer, a recursive-descent parser into
//! statement lists, and the lowering of those lists into [`GlobalType`].

use std::collections::HashSet;

use crate::{GlobalType, ParseError, ParseErrorKind};

/// How deeply blocks (`choice`, `rec`) may nest, in the text and in the
/// lowered global type, where a block followed by another nests it. Code
/// that walks a type recurses once per block level and loops over messages.
pub(crate) const MAX_NESTING: usize = 128;
/// How deep the lowered global type may be, counting every step.
pub(crate) const MAX_DEPTH: usize = 1000;
/// How many nodes the lowered global type may have.
pub(crate) const MAX_NODES: usize = 100_000;
/// How many roles a parsed protocol may have: declared in its `roles`
/// header, or, without one, used in its statements.
///
/// Projection and monitoring keep sets of roles per node, so the limit keeps
/// their memory linear in the size of the protocol. Beyond it
/// [`Protocol::parse`](crate::Protocol::parse) fails with
/// [`ParseErrorKind::TooManyRoles`] at the first role too many.
pub const MAX_ROLES: usize = 256;
/// How many branches one `choice` may have.
///
/// Beyond it [`Protocol::parse`](crate::Protocol::parse) fails with
/// [`ParseErrorKind::TooManyBranches`] at the label of the first branch too
/// many.
pub const MAX_BRANCHES: usize = 256;

/// A position in the source, 1-based, in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    fn error(self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.line, self.column, kind)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    Roles,
    Choice,
    At,
    Rec,
    Continue,
    End,
    Foreach,
}

impl Kw {
    fn from_ident(s: &str) -> Option<Kw> {
        Some(match s {
            "roles" => Kw::Roles,
            "choice" => Kw::Choice,
            "at" => Kw::At,
            "rec" => Kw::Rec,
            "continue" => Kw::Continue,
            "end" => Kw::End,
            "foreach" => Kw::Foreach,
            _ => return None,
        })
    }

    fn text(self) -> &'static str {
        match self {
            Kw::Roles => "roles",
            Kw::Choice => "choice",
            Kw::At => "at",
            Kw::Rec => "rec",
            Kw::Continue => "continue",
            Kw::End => "end",
            Kw::Foreach => "foreach",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'s> {
    Ident(&'s str),
    Kw(Kw),
    Arrow,
    Colon,
    Semi,
    Comma,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A character that starts no token.
    Invalid(char),
    Eof,
}

impl Tok<'_> {
    /// How the token is named in "found ..." messages.
    fn describe(self) -> String {
        let punct = match self {
            Tok::Ident(s) => return format!("`{s}`"),
            Tok::Kw(k) => return format!("`{}`", k.text()),
            Tok::Invalid(c) => return format!("`{}`", c.escape_debug()),
            Tok::Eof => return "end of input".to_owned(),
            Tok::Arrow => "->",
            Tok::Colon => ":",
            Tok::Semi => ";",
            Tok::Comma => ",",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
        };
        format!("`{punct}`")
    }
}

#[derive(Clone, Copy, Debug)]
struct Token<'s> {
    tok: Tok<'s>,
    pos: Pos,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`]. Never fails: a
/// character that starts no token becomes [`Tok::Invalid`], which the parser
/// reports with what it expected there.
fn lex(src: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    let (mut line, mut column) = (1, 1);
    while let Some((start, c)) = chars.next() {
        let pos = Pos { line, column };
        column += 1;
        let tok = match c {
            '\n' => {
                line += 1;
                column = 1;
                continue;
            }
            c if c.is_whitespace() => continue,
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => {
                while chars.next_if(|(_, n)| *n != '\n').is_some() {}
                continue;
            }
            '-' if chars.peek().is_some_and(|(_, n)| *n == '>') => {
                chars.next();
                column += 1;
                Tok::Arrow
            }
            ':' => Tok::Colon,
            ';' => Tok::Semi,
            ',' => Tok::Comma,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = start + c.len_utf8();
                while let Some((i, n)) =
                    chars.next_if(|(_, n)| n.is_ascii_alphanumeric() || *n == '_')
                {
                    end = i + n.len_utf8();
                    column += 1;
                }
                let word = &src[start..end];
                Kw::from_ident(word).map_or(Tok::Ident(word), Tok::Kw)
            }
            c => Tok::Invalid(c),
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: Pos { line, column },
    });
    out
}

/// One statement of the text, before lowering.
#[derive(Debug)]
enum Stmt<'s> {
    Message {
        from: String,
        to: String,
        label: &'s str,
        payload: Option<String>,
        pos: Pos,
    },
    Choice {
        at: String,
        branches: Vec<(&'s str, Vec<Stmt<'s>>)>,
        pos: Pos,
    },
    Rec {
        name: &'s str,
        body: Vec<Stmt<'s>>,
        /// Where the name is written.
        pos: Pos,
        /// Where the statement starts (its `rec`).
        start: Pos,
    },
    Continue {
        name: &'s str,
    },
    End,
    /// `foreach family[index] { body }`.
    Foreach {
        family: &'s str,
        index: &'s str,
        body: Vec<Stmt<'s>>,
        pos: Pos,
    },
}

/// Where a statement list stops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    Brace,
    Eof,
}

struct Parser<'s> {
    toks: Vec<Token<'s>>,
    at: usize,
    /// The roles of the header, if there is one.
    declared: Option<Vec<&'s str>>,
    /// Roles in order of first appearance.
    seen: Vec<&'s str>,
    /// The roles of `declared` if there is a header, else those of `seen`.
    known: HashSet<&'s str>,
    /// Loops open at this point of the text.
    loops: Vec<&'s str>,
    /// How deeply blocks nest in the text.
    nesting: usize,
    /// How many statements that become nodes of the lowered type were read.
    nodes: usize,
    /// The families of the header: name and size parameter.
    families: Vec<(&'s str, &'s str)>,
    /// The `foreach` the parser is in: family and index.
    foreach: Option<(&'s str, &'s str)>,
}

/// Where each node of a lowered [`GlobalType`] was written: a tree of the
/// same shape, holding at each message, choice and loop the position of
/// the statement it comes from. The copies that lowering makes of a
/// statement share its position. This is what
/// [`Protocol::locate`](crate::Protocol::locate) walks, along the path
/// that the checker or the projector reports.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    Message {
        pos: Pos,
        then: Box<Origin>,
    },
    Choice {
        pos: Pos,
        branches: Box<[Origin]>,
    },
    Rec {
        pos: Pos,
        body: Box<Origin>,
    },
    /// A `foreach`: its body is child 0, what follows it child 1.
    Foreach {
        pos: Pos,
        body: Box<Origin>,
        then: Box<Origin>,
    },
    /// A `continue` or the end, which no error points at.
    Leaf,
}

impl Origin {
    /// The 1-based line and column of the node at `path` (child indices
    /// from the root), if it is a message, choice or loop.
    pub(crate) fn at(&self, path: &[usize]) -> Option<(usize, usize)> {
        let mut node = self;
        for &i in path {
            node = match node {
                Origin::Message { then: next, .. } | Origin::Rec { body: next, .. } if i == 0 => {
                    next
                }
                Origin::Choice { branches, .. } => branches.get(i)?,
                Origin::Foreach { body, .. } if i == 0 => body,
                Origin::Foreach { then, .. } if i == 1 => then,
                _ => return None,
            };
        }
        match node {
            Origin::Message { pos, .. }
            | Origin::Choice { pos, .. }
            | Origin::Rec { pos, .. }
            | Origin::Foreach { pos, .. } => Some((pos.line, pos.column)),
            Origin::Leaf => None,
        }
    }
}

/// Where a statement sits in the lowered global type, as far as the parser
/// can tell: lower bounds on the steps and blocks above it there, and
/// whether it is built at all (what follows a choice without branches is
/// not). Checking these while parsing rejects oversize input before all of
/// it is read; lowering then checks the exact figures.
#[derive(Clone, Copy)]
struct Ctx {
    depth: usize,
    nesting: usize,
    live: bool,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Token<'s> {
        // `lex` always ends with `Eof` and `bump` never moves past it.
        self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token<'s> {
        let t = self.peek();
        if t.tok != Tok::Eof {
            self.at += 1;
        }
        t
    }

    fn unexpected(t: Token<'s>, expected: &str) -> ParseError {
        t.pos.error(ParseErrorKind::Unexpected {
            expected: expected.to_owned(),
            found: t.tok.describe(),
        })
    }

    fn expect(&mut self, tok: Tok<'s>, expected: &str) -> Result<Pos, ParseError> {
        let t = self.peek();
        if t.tok == tok {
            self.bump();
            Ok(t.pos)
        } else {
            Err(Self::unexpected(t, expected))
        }
    }

    fn ident(&mut self, expected: &str) -> Result<(&'s str, Pos), ParseError> {
        let t = self.peek();
        match t.tok {
            Tok::Ident(s) => {
                self.bump();
                Ok((s, t.pos))
            }
            Tok::Kw(k) => Err(Self::keyword(t.pos, k, expected)),
            _ => Err(Self::unexpected(t, expected)),
        }
    }

    /// A keyword where a name is due.
    fn keyword(pos: Pos, k: Kw, expected: &str) -> ParseError {
        pos.error(ParseErrorKind::Keyword {
            keyword: k.text().to_owned(),
            expected: expected.to_owned(),
        })
    }

    /// A payload after its `(`: nothing (`Label()`, no payload), one type
    /// name, or several, which make a tuple `(A, B)`; then `)`.
    fn payload(&mut self) -> Result<Option<String>, ParseError> {
        if self.peek().tok == Tok::RParen {
            self.bump();
            return Ok(None);
        }
        let mut names = vec![self.ident("a payload type name")?.0];
        loop {
            let t = self.bump();
            match t.tok {
                Tok::RParen => break,
                Tok::Comma => names.push(self.ident("a payload type name")?.0),
                _ => return Err(Self::unexpected(t, "`,` or `)`")),
            }
        }
        Ok(Some(match names.as_slice() {
            [one] => (*one).to_owned(),
            many => format!("({})", many.join(", ")),
        }))
    }

    /// A role name, checked against the header and recorded.
    fn role(&mut self) -> Result<String, ParseError> {
        let (name, pos) = self.ident("a role name")?;
        let family = self.families.iter().any(|(f, _)| *f == name);
        if self.peek().tok == Tok::LBracket {
            if !family {
                return Err(pos.error(ParseErrorKind::NotAFamily {
                    role: name.to_owned(),
                }));
            }
            self.bump();
            let (index, at) = self.ident("an index name")?;
            self.expect(Tok::RBracket, "`]`")?;
            if self.foreach != Some((name, index)) {
                return Err(at.error(ParseErrorKind::IndexNotBound {
                    role: name.to_owned(),
                    index: index.to_owned(),
                }));
            }
            return Ok(format!("{name}[{index}]"));
        }
        if family {
            return Err(pos.error(ParseErrorKind::FamilyWithoutIndex {
                role: name.to_owned(),
            }));
        }
        self.plain_role(name, pos).map(str::to_owned)
    }

    /// A role that is not a family, checked against the header and
    /// recorded.
    fn plain_role(&mut self, name: &'s str, pos: Pos) -> Result<&'s str, ParseError> {
        if self.known.contains(name) {
            return Ok(name);
        }
        if self.declared.is_some() {
            return Err(pos.error(ParseErrorKind::UndeclaredRole {
                role: name.to_owned(),
            }));
        }
        if self.seen.len() >= MAX_ROLES {
            return Err(pos.error(ParseErrorKind::TooManyRoles { limit: MAX_ROLES }));
        }
        self.seen.push(name);
        self.known.insert(name);
        Ok(name)
    }

    fn header(&mut self) -> Result<(), ParseError> {
        if self.peek().tok != Tok::Kw(Kw::Roles) {
            return Ok(());
        }
        self.bump();
        let mut declared = Vec::new();
        loop {
            let (name, pos) = self.ident("a role name")?;
            if self.known.contains(name) {
                return Err(pos.error(ParseErrorKind::DuplicateRole {
                    role: name.to_owned(),
                }));
            }
            if declared.len() >= MAX_ROLES {
                return Err(pos.error(ParseErrorKind::TooManyRoles { limit: MAX_ROLES }));
            }
            declared.push(name);
            self.known.insert(name);
            if self.peek().tok == Tok::LBracket {
                self.bump();
                let (size, _) = self.ident("a size name")?;
                self.expect(Tok::RBracket, "`]`")?;
                self.families.push((name, size));
            }
            let t = self.bump();
            match t.tok {
                Tok::Comma => {}
                Tok::Semi => break,
                _ => return Err(Self::unexpected(t, "`,` or `;`")),
            }
        }
        self.declared = Some(declared);
        Ok(())
    }

    fn enter(&mut self, pos: Pos) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(pos.error(ParseErrorKind::TooNested { limit: MAX_NESTING }));
        }
        Ok(())
    }

    /// Counts a statement that becomes a node at `depth` steps and under
    /// `nesting` blocks of the lowered type (if `ctx` is live), and checks
    /// the limits against these lower bounds. `below` is 1 if the node
    /// surely has a child, else 0; `block` is 1 for a block.
    fn account(
        &mut self,
        ctx: Ctx,
        below: usize,
        block: usize,
        pos: Pos,
    ) -> Result<(), ParseError> {
        if !ctx.live {
            return Ok(());
        }
        self.nodes += 1;
        if ctx.nesting + block > MAX_NESTING {
            return Err(pos.error(ParseErrorKind::TooNested { limit: MAX_NESTING }));
        }
        if ctx.depth + 1 + below > MAX_DEPTH {
            return Err(pos.error(ParseErrorKind::TooDeep { limit: MAX_DEPTH }));
        }
        if self.nodes > MAX_NODES {
            return Err(pos.error(ParseErrorKind::TooLarge { limit: MAX_NODES }));
        }
        Ok(())
    }

    /// A statement list up to `}` (not consumed) or the end of input,
    /// starting at `ctx`; also says whether control can fall off its end,
    /// and whether it does so in the lowered type.
    fn block(
        &mut self,
        closing: Closing,
        mut ctx: Ctx,
    ) -> Result<(Vec<Stmt<'s>>, bool, bool), ParseError> {
        let mut stmts = Vec::new();
        let mut falls = true;
        loop {
            let t = self.peek();
            match (t.tok, closing) {
                (Tok::RBrace, Closing::Brace) | (Tok::Eof, Closing::Eof) => {
                    return Ok((stmts, falls, ctx.live));
                }
                (
                    Tok::Ident(_)
                    | Tok::Kw(Kw::Choice | Kw::Rec | Kw::Continue | Kw::End | Kw::Foreach),
                    _,
                ) if !falls => {
                    return Err(t.pos.error(ParseErrorKind::Unreachable));
                }
                _ => {}
            }
            let (stmt, f, live) = self.stmt(closing, ctx)?;
            if matches!(stmt, Stmt::Message { .. }) {
                ctx.depth += 1;
            } else {
                // What follows a block is inside it.
                ctx.depth += 1;
                ctx.nesting += 1;
            }
            ctx.live = live;
            stmts.push(stmt);
            falls = f;
        }
    }

    /// `foreach Family[i] { ... }`, in a function of its own so that the
    /// frames of the recursion through [`Parser::stmt`] stay small.
    fn foreach_stmt(
        &mut self,
        t: Token<'s>,
        ctx: Ctx,
        inner: Ctx,
    ) -> Result<(Stmt<'s>, bool, bool), ParseError> {
        self.bump();
        let (family, pos) = self.ident("a family name")?;
        if !self.families.iter().any(|(f, _)| *f == family) {
            return Err(pos.error(ParseErrorKind::NotAFamily {
                role: family.to_owned(),
            }));
        }
        self.expect(Tok::LBracket, "`[`")?;
        let (index, _) = self.ident("an index name")?;
        self.expect(Tok::RBracket, "`]`")?;
        self.expect(Tok::LBrace, "`{`")?;
        self.enter(t.pos)?;
        self.account(ctx, 1, 1, t.pos)?;
        self.foreach = Some((family, index));
        let body = self.block(Closing::Brace, inner);
        self.foreach = None;
        let (body, _, _) = body?;
        self.expect(Tok::RBrace, "`}`")?;
        self.nesting -= 1;
        let stmt = Stmt::Foreach {
            family,
            index,
            body,
            pos: t.pos,
        };
        Ok((stmt, true, ctx.live))
    }

    /// One statement at `ctx`; says whether control can fall off its end,
    /// and whether it does so in the lowered type.
    fn stmt(&mut self, closing: Closing, ctx: Ctx) -> Result<(Stmt<'s>, bool, bool), ParseError> {
        let inner = Ctx {
            depth: ctx.depth + 1,
            nesting: ctx.nesting + 1,
            live: ctx.live,
        };
        let t = self.peek();
        match t.tok {
            Tok::Ident(_) => {
                let from = self.role()?;
                self.expect(Tok::Arrow, "`->`")?;
                let to = self.role()?;
                self.expect(Tok::Colon, "`:`")?;
                let (label, _) = self.ident("a message label")?;
                let next = self.bump();
                let payload = match next.tok {
                    Tok::Semi => None,
                    Tok::LParen => {
                        let ty = self.payload()?;
                        self.expect(Tok::Semi, "`;`")?;
                        ty
                    }
                    _ => return Err(Self::unexpected(next, "`(` or `;`")),
                };
                self.account(ctx, 1, 0, t.pos)?;
                let stmt = Stmt::Message {
                    from,
                    to,
                    label,
                    payload,
                    pos: t.pos,
                };
                Ok((stmt, true, ctx.live))
            }
            Tok::Kw(Kw::Choice) => {
                self.bump();
                self.expect(Tok::Kw(Kw::At), "`at`")?;
                let at = self.role()?;
                self.expect(Tok::LBrace, "`{`")?;
                self.enter(t.pos)?;
                self.account(ctx, 0, 1, t.pos)?;
                let mut branches = Vec::new();
                let (mut falls, mut live) = (false, false);
                loop {
                    let b = self.bump();
                    let label = match b.tok {
                        Tok::RBrace => break,
                        Tok::Ident(l) => l,
                        Tok::Kw(k) => return Err(Self::keyword(b.pos, k, "a branch label")),
                        _ => return Err(Self::unexpected(b, "a branch label or `}`")),
                    };
                    if branches.len() >= MAX_BRANCHES {
                        return Err(b.pos.error(ParseErrorKind::TooManyBranches {
                            limit: MAX_BRANCHES,
                        }));
                    }
                    self.expect(Tok::Colon, "`:`")?;
                    self.expect(Tok::LBrace, "`{`")?;
                    let (body, f, l) = self.block(Closing::Brace, inner)?;
                    self.expect(Tok::RBrace, "`}`")?;
                    falls |= f;
                    live |= l;
                    branches.push((label, body));
                }
                self.nesting -= 1;
                // A choice without branches is reported by validation; for
                // reachability it falls through, but lowering drops what
                // follows it.
                let falls = falls || branches.is_empty();
                let stmt = Stmt::Choice {
                    at,
                    branches,
                    pos: t.pos,
                };
                Ok((stmt, falls, live))
            }
            Tok::Kw(k @ (Kw::Rec | Kw::Continue | Kw::End | Kw::Foreach))
                if self.foreach.is_some() =>
            {
                Err(t.pos.error(ParseErrorKind::InForeach {
                    keyword: k.text().to_owned(),
                }))
            }
            Tok::Kw(Kw::Foreach) => self.foreach_stmt(t, ctx, inner),
            Tok::Kw(Kw::Rec) => {
                self.bump();
                let (name, pos) = self.ident("a loop name")?;
                self.expect(Tok::LBrace, "`{`")?;
                self.enter(t.pos)?;
                self.account(ctx, 1, 1, t.pos)?;
                self.loops.push(name);
                let (body, falls, live) = self.block(Closing::Brace, inner)?;
                self.loops.pop();
                self.expect(Tok::RBrace, "`}`")?;
                self.nesting -= 1;
                let stmt = Stmt::Rec {
                    name,
                    body,
                    pos,
                    start: t.pos,
                };
                Ok((stmt, falls, live))
            }
            Tok::Kw(Kw::Continue) => {
                self.bump();
                let (name, pos) = self.ident("a loop name")?;
                if !self.loops.contains(&name) {
                    return Err(pos.error(ParseErrorKind::UnboundLoop {
                        name: name.to_owned(),
                    }));
                }
                self.expect(Tok::Semi, "`;`")?;
                Ok((Stmt::Continue { name }, false, false))
            }
            Tok::Kw(Kw::End) => {
                self.bump();
                self.expect(Tok::Semi, "`;`")?;
                Ok((Stmt::End, false, false))
            }
            _ => Err(Self::unexpected(
                t,
                match closing {
                    Closing::Brace => "a statement or `}`",
                    Closing::Eof => "a statement or end of input",
                },
            )),
        }
    }
}

/// A lowered statement list: the global type and where its nodes were
/// written, its size, its depth in steps and in blocks, and the loops it
/// declares (name and position of one declaration each).
#[derive(Clone)]
struct Lowered<'s> {
    ty: GlobalType,
    origin: Origin,
    size: usize,
    depth: usize,
    nesting: usize,
    loops: Vec<(&'s str, Pos)>,
}

impl Lowered<'_> {
    fn end() -> Self {
        Lowered {
            ty: GlobalType::End,
            origin: Origin::Leaf,
            size: 1,
            depth: 1,
            nesting: 0,
            loops: Vec::new(),
        }
    }
}

/// Turns statement lists into global types: what follows a block is copied
/// into every place where control falls off the block's end.
struct Lowerer {
    made: usize,
}

impl Lowerer {
    /// Counts `size` new nodes and checks the limits for a subtree of the
    /// given depth and nesting.
    fn account(
        &mut self,
        size: usize,
        depth: usize,
        nesting: usize,
        pos: Pos,
    ) -> Result<(), ParseError> {
        self.made = self.made.saturating_add(size);
        if self.made > MAX_NODES {
            return Err(pos.error(ParseErrorKind::TooLarge { limit: MAX_NODES }));
        }
        if depth > MAX_DEPTH {
            return Err(pos.error(ParseErrorKind::TooDeep { limit: MAX_DEPTH }));
        }
        if nesting > MAX_NESTING {
            return Err(pos.error(ParseErrorKind::TooNested { limit: MAX_NESTING }));
        }
        Ok(())
    }

    fn copy<'s>(&mut self, k: &Lowered<'s>, pos: Pos) -> Result<Lowered<'s>, ParseError> {
        self.account(k.size, k.depth, k.nesting, pos)?;
        Ok(k.clone())
    }

    /// A lowered `foreach` followed by `then`, in a function of its own so
    /// that the frames of the recursion through [`Lowerer::seq`] stay small.
    fn foreach<'s>(
        &mut self,
        family: &str,
        index: &str,
        body: &[Stmt<'s>],
        pos: Pos,
        then: Lowered<'s>,
    ) -> Result<Lowered<'s>, ParseError> {
        let b = self.seq(body, &Lowered::end(), pos)?;
        let depth = b.depth.max(then.depth) + 1;
        let nesting = b.nesting.max(then.nesting) + 1;
        self.account(1, depth, nesting, pos)?;
        Ok(Lowered {
            ty: GlobalType::Foreach {
                family: family.to_owned(),
                index: index.to_owned(),
                body: Box::new(b.ty),
                then: Box::new(then.ty),
            },
            origin: Origin::Foreach {
                pos,
                body: Box::new(b.origin),
                then: Box::new(then.origin),
            },
            size: b.size + then.size + 1,
            depth,
            nesting,
            loops: then.loops,
        })
    }

    /// Lowers `stmts`, continuing with `k` where control falls off the end.
    fn seq<'s>(
        &mut self,
        stmts: &[Stmt<'s>],
        k: &Lowered<'s>,
        end_pos: Pos,
    ) -> Result<Lowered<'s>, ParseError> {
        let mut acc: Option<Lowered<'s>> = None;
        for stmt in stmts.iter().rev() {
            let lowered = match stmt {
                Stmt::Message {
                    from,
                    to,
                    label,
                    payload,
                    pos,
                } => {
                    let then = match acc.take() {
                        Some(a) => a,
                        None => self.copy(k, *pos)?,
                    };
                    let (size, depth) = (then.size + 1, then.depth + 1);
                    self.account(1, depth, then.nesting, *pos)?;
                    Lowered {
                        ty: GlobalType::Message {
                            from: from.clone(),
                            to: to.clone(),
                            label: (*label).to_owned(),
                            payload: payload.clone(),
                            then: Box::new(then.ty),
                        },
                        origin: Origin::Message {
                            pos: *pos,
                            then: Box::new(then.origin),
                        },
                        size,
                        depth,
                        nesting: then.nesting,
                        loops: then.loops,
                    }
                }
                Stmt::Choice { at, branches, pos } => {
                    let next = acc.take();
                    let next = next.as_ref().unwrap_or(k);
                    let mut out = Vec::with_capacity(branches.len());
                    let mut origins = Vec::with_capacity(branches.len());
                    let (mut size, mut depth, mut nesting) = (1, 1, 1);
                    let mut loops = Vec::new();
                    for (label, body) in branches {
                        let b = self.seq(body, next, *pos)?;
                        size += b.size;
                        depth = depth.max(b.depth + 1);
                        nesting = nesting.max(b.nesting + 1);
                        for l in b.loops {
                            if !loops.iter().any(|(n, _)| *n == l.0) {
                                loops.push(l);
                            }
                        }
                        out.push(((*label).to_owned(), b.ty));
                        origins.push(b.origin);
                    }
                    self.account(1, depth, nesting, *pos)?;
                    Lowered {
                        ty: GlobalType::Choice {
                            at: at.clone(),
                            branches: out,
                        },
                        origin: Origin::Choice {
                            pos: *pos,
                            branches: origins.into_boxed_slice(),
                        },
                        size,
                        depth,
                        nesting,
                        loops,
                    }
                }
                Stmt::Rec {
                    name,
                    body,
                    pos,
                    start,
                } => {
                    let next = acc.take();
                    let next = next.as_ref().unwrap_or(k);
                    let mut b = self.seq(body, next, *pos)?;
                    if let Some((_, inner)) = b.loops.iter().find(|(n, _)| n == name) {
                        return Err(inner.error(ParseErrorKind::ShadowedLoop {
                            name: (*name).to_owned(),
                        }));
                    }
                    let (depth, nesting) = (b.depth + 1, b.nesting + 1);
                    self.account(1, depth, nesting, *pos)?;
                    b.loops.push((name, *pos));
                    Lowered {
                        ty: GlobalType::Rec {
                            name: (*name).to_owned(),
                            body: Box::new(b.ty),
                        },
                        origin: Origin::Rec {
                            pos: *start,
                            body: Box::new(b.origin),
                        },
                        size: b.size + 1,
                        depth,
                        nesting,
                        loops: b.loops,
                    }
                }
                // The parser rejects statements after these, so `acc` is
                // still empty and `k` is not used.
                Stmt::Continue { name } => Lowered {
                    ty: GlobalType::Continue {
                        name: (*name).to_owned(),
                    },
                    ..Lowered::end()
                },
                Stmt::End => Lowered::end(),
                Stmt::Foreach {
                    family,
                    index,
                    body,
                    pos,
                } => {
                    let then = match acc.take() {
                        Some(a) => a,
                        None => self.copy(k, *pos)?,
                    };
                    self.foreach(family, index, body, *pos, then)?
                }
            };
            acc = Some(lowered);
        }
        match acc {
            Some(a) => Ok(a),
            None => self.copy(k, end_pos),
        }
    }
}

/// Parses the text syntax into the protocol's roles, its global type and
/// where each node of it was written.
/// A parsed protocol: its roles, its families (name and size parameter,
/// each also among the roles), its global type and where each node of it
/// was written.
pub(crate) type Parsed = (Vec<String>, Vec<(String, String)>, GlobalType, Origin);

pub(crate) fn parse(src: &str) -> Result<Parsed, ParseError> {
    let mut p = Parser {
        toks: lex(src),
        at: 0,
        declared: None,
        seen: Vec::new(),
        known: HashSet::new(),
        loops: Vec::new(),
        nesting: 0,
        nodes: 0,
        families: Vec::new(),
        foreach: None,
    };
    p.header()?;
    let root = Ctx {
        depth: 0,
        nesting: 0,
        live: true,
    };
    let (stmts, _, _) = p.block(Closing::Eof, root)?;
    let end_pos = p.peek().pos;
    let lowered = Lowerer { made: 0 }.seq(&stmts, &Lowered::end(), end_pos)?;
    let families = p
        .families
        .iter()
        .map(|(f, n)| ((*f).to_owned(), (*n).to_owned()))
        .collect();
    let roles = p.declared.unwrap_or(p.seen);
    Ok((
        roles.into_iter().map(str::to_owned).collect(),
        families,
        lowered.ty,
        lowered.origin,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> (usize, usize, String) {
        let e = parse(src).unwrap_err();
        (e.line(), e.column(), e.kind().to_string())
    }

    #[test]
    fn lexer_tracks_lines_and_columns() {
        let toks = lex("A -> B: m; // note\n  rec X {");
        let got: Vec<_> = toks
            .iter()
            .map(|t| (t.tok, t.pos.line, t.pos.column))
            .collect();
        assert_eq!(
            got,
            vec![
                (Tok::Ident("A"), 1, 1),
                (Tok::Arrow, 1, 3),
                (Tok::Ident("B"), 1, 6),
                (Tok::Colon, 1, 7),
                (Tok::Ident("m"), 1, 9),
                (Tok::Semi, 1, 10),
                (Tok::Kw(Kw::Rec), 2, 3),
                (Tok::Ident("X"), 2, 7),
                (Tok::LBrace, 2, 9),
                (Tok::Eof, 2, 10),
            ]
        );
    }

    #[test]
    fn statements_after_a_block_continue_every_branch() {
        let (roles, _, g, _) =
            parse("choice at A { x: { A -> B: X; } y: { A -> B: Y; end; } } B -> A: Done;")
                .unwrap();
        assert_eq!(roles, ["A", "B"]);
        let done = GlobalType::message("B", "A", "Done", None, GlobalType::End);
        let want = GlobalType::choice(
            "A",
            [
                ("x", GlobalType::message("A", "B", "X", None, done)),
                (
                    "y",
                    GlobalType::message("A", "B", "Y", None, GlobalType::End),
                ),
            ],
        );
        assert_eq!(g, want);
    }

    #[test]
    fn statements_after_a_loop_run_when_it_does_not_continue() {
        let (_, _, g, _) = parse(
            "rec L { choice at A { more: { A -> B: M; continue L; } stop: {} } } A -> B: Bye;",
        )
        .unwrap();
        let want = GlobalType::rec(
            "L",
            GlobalType::choice(
                "A",
                [
                    (
                        "more",
                        GlobalType::message("A", "B", "M", None, GlobalType::continue_loop("L")),
                    ),
                    (
                        "stop",
                        GlobalType::message("A", "B", "Bye", None, GlobalType::End),
                    ),
                ],
            ),
        );
        assert_eq!(g, want);
    }

    /// Whether `origin` has the shape of `g`.
    fn same_shape(g: &GlobalType, origin: &Origin) -> bool {
        match (g, origin) {
            (GlobalType::Message { then, .. }, Origin::Message { then: o, .. }) => {
                same_shape(then, o)
            }
            (GlobalType::Choice { branches, .. }, Origin::Choice { branches: o, .. }) => {
                branches.len() == o.len()
                    && branches.iter().zip(o).all(|((_, b), o)| same_shape(b, o))
            }
            (GlobalType::Rec { body, .. }, Origin::Rec { body: o, .. }) => same_shape(body, o),
            (GlobalType::Continue { .. } | GlobalType::End, Origin::Leaf) => true,
            _ => false,
        }
    }

    #[test]
    fn origins_have_the_shape_of_the_type_and_copies_share_a_position() {
        let src = "rec L {\n  choice at A { more: { A -> B: M; continue L; } stop: {} }\n}\nA -> B: Bye;\nchoice at B { x: { B -> A: X; } y: {} }\nend;";
        let (_, _, g, origin) = parse(src).unwrap();
        assert!(same_shape(&g, &origin));
        assert_eq!(origin.at(&[]), Some((1, 1)));
        assert_eq!(origin.at(&[0]), Some((2, 3)));
        assert_eq!(origin.at(&[0, 0]), Some((2, 25)));
        assert_eq!(origin.at(&[0, 0, 0]), None, "a `continue` is no statement");
        // `Bye` and the choice after it, copied into `stop`.
        assert_eq!(origin.at(&[0, 1]), Some((4, 1)));
        assert_eq!(origin.at(&[0, 1, 0]), Some((5, 1)));
        assert_eq!(origin.at(&[0, 1, 0, 0]), Some((5, 20)));
        assert_eq!(origin.at(&[0, 1, 0, 1]), None);
        assert_eq!(origin.at(&[0, 2]), None, "no third branch");
        let twice = "choice at A { x: { A -> B: X; } y: { A -> B: Y; } }\nB -> A: Done;";
        let (_, _, g, origin) = parse(twice).unwrap();
        assert!(same_shape(&g, &origin));
        assert_eq!(origin.at(&[0, 0]), Some((2, 1)));
        assert_eq!(origin.at(&[1, 0]), Some((2, 1)));
    }

    #[test]
    fn header_sets_role_order() {
        let (roles, _, _, _) = parse("roles C, B, A;\nA -> B: m;").unwrap();
        assert_eq!(roles, ["C", "B", "A"]);
        let (roles, _, g, origin) = parse("").unwrap();
        assert!(roles.is_empty() && matches!(origin, Origin::Leaf));
        assert_eq!(g, GlobalType::End);
        assert_eq!(parse("end;").unwrap().2, GlobalType::End);
    }

    #[test]
    fn scope_and_reachability_errors() {
        assert_eq!(
            err("rec X { A -> B: m; }\ncontinue X;"),
            (2, 10, "`continue X` is not inside a `rec X` block".into())
        );
        assert_eq!(
            err("rec X { A -> B: m; continue X; }\nA -> B: n;"),
            (2, 1, ParseErrorKind::Unreachable.to_string())
        );
        let (line, column, _) = err("rec X { A -> B: m; }\nrec X { B -> A: n; continue X; }");
        assert_eq!((line, column), (2, 5));
        let (line, column, _) = err("rec X { rec X { A -> B: m; continue X; } }");
        assert_eq!((line, column), (1, 13));
    }

    #[test]
    fn bad_tokens_name_what_was_expected() {
        assert_eq!(
            err("A -> B: m(u32;"),
            (1, 14, "expected `,` or `)`, found `;`".into())
        );
        assert_eq!(
            err("A -> B: m;\n  B # A"),
            (2, 5, "expected `->`, found `#`".into())
        );
        assert_eq!(
            err("choice at A { x: { A -> B: m; }"),
            (
                1,
                32,
                "expected a branch label or `}`, found end of input".into()
            )
        );
        assert_eq!(
            err("A -> end: m;"),
            (
                1,
                6,
                "`end` is a keyword and cannot be a role name: rename it".into()
            )
        );
        assert_eq!(
            err("A -> B: m; }"),
            (
                1,
                12,
                "expected a statement or end of input, found `}`".into()
            )
        );
    }

    #[test]
    fn limits_hold() {
        let deep = "rec X { ".repeat(MAX_NESTING + 1);
        assert!(matches!(
            parse(&deep).unwrap_err().kind(),
            ParseErrorKind::TooNested { .. }
        ));
        // Blocks in a row nest in the lowered type.
        let chained = "choice at A { x: { A -> B: m; } }\n".repeat(MAX_NESTING + 1);
        assert!(matches!(
            parse(&chained).unwrap_err().kind(),
            ParseErrorKind::TooNested { .. }
        ));
        let long = "A -> B: m;\n".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            parse(&long).unwrap_err().kind(),
            ParseErrorKind::TooDeep { .. }
        ));
        let wide = "choice at A { x: { A -> B: x; } y: { A -> B: y; } }\n".repeat(30);
        assert!(matches!(
            parse(&wide).unwrap_err().kind(),
            ParseErrorKind::TooLarge { .. }
        ));
    }
}
